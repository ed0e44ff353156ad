//! `taskledger auth`: helps write `serve --auth-file`. `auth token` makes a new bearer token and
//! prints it with the file entry that holds its SHA-256 (the server never stores the token).
//! Does not read or change a credentials file.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::api::auth::{new_token, token_hash};

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// A new bearer token (stdout) and its `[[caller]]` entry for the auth file.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The caller's name in the auth file (and in the log of what it does).
    #[arg(long)]
    name: String,
    /// Its roles.
    #[arg(long = "role", value_enum, required = true)]
    roles: Vec<RoleArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Reader,
    Agent,
    Operator,
    Admin,
}

pub fn run(command: AuthCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuthCommand::Token(args) => {
            let token = new_token();
            println!("token = {token}");
            println!();
            println!("# For the --auth-file (TOML); give the token above to the caller only.");
            print!("{}", entry(&args.name, &args.roles, &token));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The `[[caller]]` entry of a token.
fn entry(name: &str, roles: &[RoleArg], token: &str) -> String {
    let roles: Vec<String> = roles
        .iter()
        .map(|role| format!("\"{}\"", format!("{role:?}").to_lowercase()))
        .collect();
    format!(
        "[[caller]]\nname = {name:?}\nroles = [{}]\ntoken_sha256 = \"{}\"\n",
        roles.join(", "),
        hex::encode(token_hash(token))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::{token_access, Callers};

    #[test]
    fn a_made_token_authenticates_through_its_entry() {
        let token = new_token();
        let file = entry("ci", &[RoleArg::Operator, RoleArg::Reader], &token);
        let callers = Callers::parse(&file, true).unwrap();
        assert_eq!(token_access(&callers, &token).unwrap().identity().0, "ci");
        assert!(token_access(&callers, &new_token()).is_err());
    }
}
