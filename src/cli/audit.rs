//! The audit commands: `tail` follows a running server's log through `Ledger.Subscribe` and prints
//! one JSON object per line; `export` (offline) writes a data directory's log to a file or, with
//! `--verify`, checks such a file; `import` (offline) loads a file into a new, empty directory.
//! Does not implement any of it: `crate::audit` and the `Ledger` service do; this parses flags,
//! shows progress and prints.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use tonic::metadata::AsciiMetadataValue;
use tonic::Request;

use super::admin::{self, DataDirArgs};
use super::client::describe_failure;
use super::progress::Progress;
use crate::api::REGION_HEADER;
use crate::audit::export::{self, ExportError, Format};
use crate::audit::ExportSummary;
use crate::ecs_json::{to_value, TimeStyle, WriteOptions};
use crate::proto::v1::ledger_client::LedgerClient;
use crate::proto::v1::subscribe_response::Item;
use crate::proto::v1::{LogFilter, LogFormat, SubscribeRequest};

/// Largest message `tail` accepts (one log entry with its EventBridge rendering stays far below).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The server's gRPC endpoint.
    #[arg(long, env = "TASKLEDGER_ENDPOINT", default_value = "http://127.0.0.1:50051")]
    endpoint: String,
    /// Region to work in, sent as `x-taskledger-region` metadata (default: the server's region).
    #[arg(long, env = "TASKLEDGER_REGION")]
    region: Option<String>,
    #[command(flatten)]
    tls: super::connect::TlsClientArgs,
    /// The first seq to print (0 or 1: the whole log). Default: only what is committed from now on.
    #[arg(long, value_name = "SEQ")]
    from: Option<u64>,
    /// `json`: every log record (seq, time, cause, event) in ECS JSON with ISO-8601 times;
    /// `eventbridge`: the EventBridge "ECS Task State Change" event of each task state change.
    #[arg(long, value_enum, default_value_t = TailFormat::Json)]
    format: TailFormat,
    /// Only events about this cluster (name or ARN).
    #[arg(long)]
    cluster: Option<String>,
    /// Only events about this task (id or ARN).
    #[arg(long)]
    task: Option<String>,
    /// Only these event kinds, e.g. `TaskChanged` (repeatable, or comma-separated).
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Also print checkpoints, as `{"checkpoint":{"seq":N,"head":H}}` (resume with --from N+1).
    #[arg(long)]
    checkpoints: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TailFormat {
    Json,
    Eventbridge,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    data: DataDirArgs,
    /// Write the log to this file (`-`: stdout). An existing file is not overwritten.
    #[arg(long, value_name = "FILE", required_unless_present = "verify")]
    out: Option<PathBuf>,
    /// The first seq to export.
    #[arg(long, value_name = "SEQ", default_value_t = 1)]
    from: u64,
    /// The last seq to export (default: the head).
    #[arg(long, value_name = "SEQ")]
    to: Option<u64>,
    /// `binary`: length-delimited protobuf with a CRC32C per record, for `import`;
    /// `ndjson`: one JSON object per line, for people (import does not read it).
    #[arg(long, value_enum, default_value_t = ExportFormat::Binary)]
    format: ExportFormat,
    /// Check an export file instead of writing one: prints its count and seq range, or names
    /// the first damaged, missing or repeated record and exits non-zero. Needs no store.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["out", "from", "to", "format"])]
    verify: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    Binary,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Where the log is (`--engine etcd …`); on etcd, the data directory only holds local
    /// derived data and may be any directory of this command's own.
    #[command(flatten)]
    data: DataDirArgs,
    /// Archive the seqs before this one (rounded down to where a stored value starts; the value
    /// holding the head always stays).
    #[arg(long, value_name = "SEQ")]
    before: u64,
    /// The archive file to write (an export in binary format). It must not exist; servers name
    /// it with --archive to read the seqs it holds.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file (binary format, from seq 1; `-`: stdin).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// The new store's directory: it must not exist yet or be empty.
    #[arg(long, env = "TASKLEDGER_DATA_DIR")]
    data_dir: PathBuf,
}

/// `taskledger tail`: prints the log as it is committed until interrupted or the server stops.
pub fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(follow(args))
}

async fn follow(args: TailArgs) -> anyhow::Result<ExitCode> {
    let region = args
        .region
        .as_deref()
        .map(|r| {
            r.parse::<AsciiMetadataValue>()
                .map_err(|_| anyhow!("--region '{r}' is not printable ASCII"))
        })
        .transpose()?;
    let mut client = LedgerClient::with_interceptor(args.tls.channel(&args.endpoint).await?, args.tls.bearer()?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let format = match args.format {
        TailFormat::Json => LogFormat::Typed,
        TailFormat::Eventbridge => LogFormat::Eventbridge,
    };
    let mut request = Request::new(SubscribeRequest {
        // 0 asks for the head; `--from 0` means the start of the log.
        from_seq: args.from.map_or(0, |seq| seq.max(1)),
        filter: Some(LogFilter {
            cluster: args.cluster,
            task: args.task,
            kinds: args.kinds,
        }),
        format: format as i32,
        checkpoint_interval_ms: None,
    });
    if let Some(region) = region {
        request.metadata_mut().insert(REGION_HEADER, region);
    }
    let mut stream = client.subscribe(request).await.map_err(describe_failure)?.into_inner();
    let options = WriteOptions {
        time_style: TimeStyle::Iso8601Millis,
        emit_empty_lists: false,
    };
    let stdout = std::io::stdout();
    let mut resume = args.from;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => bail!("the server ended the stream{}", resume_hint(resume)),
            Err(status) => bail!("{}{}", describe_failure(status), resume_hint(resume)),
        };
        let line = match message.item {
            Some(Item::Entry(entry)) => {
                resume = Some(entry.seq + 1);
                match (args.format, entry.record, entry.eventbridge_json) {
                    (TailFormat::Eventbridge, _, Some(event)) => Some(event),
                    (TailFormat::Eventbridge, _, None) => None,
                    (TailFormat::Json, Some(record), _) => Some(serde_json::to_string(&to_value(&record, &options))?),
                    (TailFormat::Json, None, _) => None,
                }
            }
            Some(Item::Checkpoint(checkpoint)) => {
                resume = Some(checkpoint.seq + 1);
                args.checkpoints.then(|| {
                    serde_json::json!({"checkpoint": {"seq": checkpoint.seq, "head": checkpoint.head}}).to_string()
                })
            }
            None => None,
        };
        if let Some(line) = line {
            let mut out = stdout.lock();
            match writeln!(out, "{line}").and_then(|()| out.flush()) {
                Ok(()) => {}
                // `taskledger tail | head`: the reader is done, and so are we.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
                Err(error) => return Err(error).context("writing to stdout"),
            }
        }
    }
}

fn resume_hint(resume: Option<u64>) -> String {
    match resume {
        Some(seq) => format!(" (resume with `taskledger tail --from {seq}`)"),
        None => String::new(),
    }
}

/// `taskledger archive`: moves the oldest part of the log into a file and out of the engine.
pub fn archive(args: ArchiveArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.out.exists(),
        "{} already exists; remove it or choose another --out",
        args.out.display()
    );
    let log = args.data.engine.open_log(&args.data.data_dir)?;
    let progress = Progress::start("archive", &[]);
    let outcome = crate::audit::archive::archive(&*log, args.before, &args.out, &progress.callback());
    progress.finish();
    match outcome.context("archive failed")? {
        Some(archived) => println!(
            "archived seqs {}..={} to {} and removed them from the log; servers read them with --archive {}",
            archived.first,
            archived.last,
            args.out.display(),
            args.out.display()
        ),
        None => println!(
            "nothing to archive before seq {}: the log's engine holds no whole value before it (head {})",
            args.before,
            log.head().unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `taskledger export`: writes the log to a file, or checks a file with `--verify`.
pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.verify {
        return verify_file(file);
    }
    let out = args.out.as_ref().expect("clap requires --out without --verify");
    if let Some(to) = args.to {
        anyhow::ensure!(to >= args.from, "--to {to} is before --from {}", args.from);
    }
    let format = match args.format {
        ExportFormat::Binary => Format::Binary,
        ExportFormat::Ndjson => Format::Ndjson,
    };
    anyhow::ensure!(
        out.as_os_str() == "-" || !out.exists(),
        "{} already exists; remove it or choose another --out",
        out.display()
    );
    let store = admin::open(&args.data)?;
    let progress = Progress::start("export", &[]);
    if out.as_os_str() == "-" {
        let summary = export::export(
            &store,
            std::io::stdout().lock(),
            format,
            args.from,
            args.to,
            &progress.callback(),
        );
        progress.finish();
        let summary = summary.context("export failed")?;
        eprintln!("{}", describe_export(&summary, "stdout"));
        return Ok(ExitCode::SUCCESS);
    }
    let summary = export::write_new_file(out, |file| {
        export::export(&store, file, format, args.from, args.to, &progress.callback())
    })
    .context("export failed")?;
    progress.finish();
    println!("{}", describe_export(&summary, &out.display().to_string()));
    if summary.count == 0 {
        println!(
            "(the range holds no records: the store's head is seq {})",
            store.head_seq()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_export(summary: &ExportSummary, target: &str) -> String {
    format!(
        "exported {} records, seq {}..={}, to {target}",
        summary.count, summary.first_seq, summary.last_seq
    )
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn Read>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::new(file)))
}

/// `taskledger export --verify FILE`.
fn verify_file(path: &Path) -> anyhow::Result<ExitCode> {
    let input = open_input(path)?;
    let progress = Progress::start("export --verify", &[]);
    let outcome = export::check(input, &progress.callback());
    progress.finish();
    match outcome {
        Ok(summary) => {
            println!(
                "{}: intact, {} records, seq {}..={}",
                path.display(),
                summary.count,
                summary.first_seq,
                summary.last_seq
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ ExportError::Damaged { .. }) => Err(anyhow!("{} is damaged at {error}", path.display())),
        Err(error) => Err(anyhow!("cannot check {}: {error}", path.display())),
    }
}

/// `taskledger import --in FILE --data-dir NEWDIR`.
pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.data_dir;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {} (it must be a directory)", dir.display()))?;
        anyhow::ensure!(
            entries.next().is_none(),
            "{} is not empty; import only into a new, empty data directory",
            dir.display()
        );
    }
    let input = open_input(&args.input)?;
    let progress = Progress::start("import", &["reading the file", "rebuilding the views"]);
    let outcome = export::import(dir, input, &progress.callback());
    progress.finish();
    match outcome {
        Ok(summary) => {
            println!(
                "imported {} records, seq {}..={}, into {}; views rebuilt",
                summary.count,
                summary.first_seq,
                summary.last_seq,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ ExportError::NotEmpty(_)) => Err(error.into()),
        Err(error) => Err(anyhow!(
            "import of {} failed: {error}. {} holds a partial store that must not be used: delete it \
             before trying again",
            args.input.display(),
            dir.display()
        )),
    }
}
