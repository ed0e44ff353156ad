//! The transcoder's tests: round trips, ECS spellings, times, errors with paths.

use prost_types::Timestamp;
use serde_json::json;

use super::*;
use crate::proto::{log, v1};

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn rich_register_request() -> v1::RegisterTaskDefinitionRequest {
    v1::RegisterTaskDefinitionRequest {
        family: s("web"),
        task_role_arn: s("arn:aws:iam::123456789012:role/app"),
        network_mode: Some(v1::NetworkMode::Awsvpc as i32),
        requires_compatibilities: vec![v1::Compatibility::Fargate as i32, v1::Compatibility::Ec2 as i32],
        cpu: s("256"),
        memory: s("512"),
        tags: vec![v1::Tag {
            key: s("team"),
            value: s("core"),
        }],
        ephemeral_storage: Some(v1::EphemeralStorage { size_in_gib: Some(30) }),
        enable_fault_injection: Some(false),
        container_definitions: vec![
            v1::ContainerDefinition {
                name: s("app"),
                image: s("nginx:1.25"),
                cpu: Some(128),
                memory: Some(0),
                essential: Some(true),
                port_mappings: vec![
                    v1::PortMapping {
                        container_port: Some(80),
                        host_port: Some(80),
                        protocol: Some(v1::TransportProtocol::Tcp as i32),
                        ..Default::default()
                    },
                    v1::PortMapping {
                        container_port: Some(53),
                        protocol: Some(v1::TransportProtocol::Udp as i32),
                        ..Default::default()
                    },
                ],
                environment: vec![v1::KeyValuePair {
                    name: s("MODE"),
                    value: s(""),
                }],
                command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
                docker_labels: [("a.b".to_owned(), "1".to_owned())].into(),
                log_configuration: Some(v1::LogConfiguration {
                    log_driver: Some(v1::LogDriver::Awslogs as i32),
                    options: [
                        ("awslogs-group".to_owned(), "/ecs/web".to_owned()),
                        ("awslogs-region".to_owned(), "us-east-1".to_owned()),
                    ]
                    .into(),
                    ..Default::default()
                }),
                health_check: Some(v1::HealthCheck {
                    command: vec!["CMD-SHELL".into(), "curl -f http://localhost/ || exit 1".into()],
                    interval: Some(30),
                    timeout: Some(5),
                    retries: Some(3),
                    start_period: Some(0),
                }),
                ..Default::default()
            },
            v1::ContainerDefinition {
                name: s("sidecar"),
                image: s("busybox"),
                essential: Some(false),
                log_configuration: Some(v1::LogConfiguration {
                    log_driver: Some(v1::LogDriver::JsonFile as i32),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ],
        ..Default::default()
    }
}

#[test]
fn round_trip_of_a_full_register_task_definition_request() {
    let request = rich_register_request();
    let json = to_value(&request, &WriteOptions::default());
    let back: v1::RegisterTaskDefinitionRequest = from_value(&json).expect("own output reads back");
    assert_eq!(back, request);
    let back: v1::RegisterTaskDefinitionRequest = from_slice(to_string(&request).as_bytes()).expect("reads back");
    assert_eq!(back, request);
}

#[test]
fn enum_values_use_their_ecs_spelling() {
    let json = to_value(&rich_register_request(), &WriteOptions::default());
    assert_eq!(json["networkMode"], "awsvpc");
    assert_eq!(json["requiresCompatibilities"], json!(["FARGATE", "EC2"]));
    assert_eq!(json["containerDefinitions"][0]["portMappings"][1]["protocol"], "udp");
    assert_eq!(
        json["containerDefinitions"][0]["logConfiguration"]["logDriver"],
        "awslogs"
    );
    assert_eq!(
        json["containerDefinitions"][1]["logConfiguration"]["logDriver"],
        "json-file"
    );
}

#[test]
fn unspecified_enum_is_omitted_and_cannot_be_read() {
    let request = v1::RegisterTaskDefinitionRequest {
        network_mode: Some(v1::NetworkMode::Unspecified as i32),
        ..Default::default()
    };
    assert_eq!(to_value(&request, &WriteOptions::default()), json!({}));
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"networkMode": "NETWORK_MODE_UNSPECIFIED"}))
        .expect_err("proto names are not ECS spellings");
    assert_eq!(err.path, "networkMode");
}

#[test]
fn unspellable_enum_items_are_left_out_of_lists_and_members_are_sorted() {
    let request = v1::RegisterTaskDefinitionRequest {
        family: Some("web".into()),
        requires_compatibilities: vec![
            v1::Compatibility::Fargate as i32,
            v1::Compatibility::Unspecified as i32,
            v1::Compatibility::Ec2 as i32,
        ],
        network_mode: Some(v1::NetworkMode::Unspecified as i32),
        cpu: Some("256".into()),
        ..Default::default()
    };
    let text = String::from_utf8(to_vec(&request, &WriteOptions::default())).unwrap();
    assert_eq!(
        text,
        r#"{"cpu":"256","family":"web","requiresCompatibilities":["FARGATE","EC2"]}"#
    );
    // The text is what a sorted serde_json map of the same members prints.
    assert_eq!(text, to_value(&request, &WriteOptions::default()).to_string());
    assert_eq!(json_len(&request), text.len());
}

#[test]
fn unknown_enum_value_is_an_error_naming_the_path() {
    let input = json!({"containerDefinitions": [{}, {"logConfiguration": {"logDriver": "AWSLOGS"}}]});
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&input).expect_err("ECS spellings are case-sensitive");
    assert_eq!(err.path, "containerDefinitions[1].logConfiguration.logDriver");
    assert!(
        err.message
            .starts_with(r#"unknown value "AWSLOGS"; expected one of "json-file", "syslog""#),
        "{err}"
    );
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"networkMode": 3}))
        .expect_err("numbers are not spellings");
    assert!(err.message.contains("\"awsvpc\""), "{err}");
}

#[test]
fn absent_and_null_members_leave_fields_unset() {
    let input = json!({"family": "web", "cpu": null, "containerDefinitions": null, "ephemeralStorage": null});
    let request: v1::RegisterTaskDefinitionRequest = from_value(&input).expect("nulls are absent members");
    assert_eq!(
        request,
        v1::RegisterTaskDefinitionRequest {
            family: s("web"),
            ..Default::default()
        }
    );
}

#[test]
fn unknown_members_are_ignored_and_reported() {
    let input = json!({"family": "web", "Family": "x", "containerDefinitions": [{"name": "a", "imageTag": "1"}]});
    let parsed =
        from_value_reporting_unknown::<v1::RegisterTaskDefinitionRequest>(&input).expect("unknown members are ignored");
    assert_eq!(parsed.message.family.as_deref(), Some("web"));
    assert_eq!(parsed.unknown_members, ["Family", "containerDefinitions[0].imageTag"]);
}

#[test]
fn json_member_names_follow_ecs() {
    let run = v1::RunTaskRequest {
        enable_ecs_managed_tags: Some(true),
        ..Default::default()
    };
    assert_eq!(
        to_value(&run, &WriteOptions::default()),
        json!({"enableECSManagedTags": true})
    );
    let storage = v1::EphemeralStorage { size_in_gib: Some(21) };
    assert_eq!(to_string(&storage), r#"{"sizeInGiB":21}"#);
    let binding = v1::NetworkBinding {
        bind_ip: s("0.0.0.0"),
        ..Default::default()
    };
    assert_eq!(
        to_value(&binding, &WriteOptions::default()),
        json!({"bindIP": "0.0.0.0"})
    );

    let parsed = from_value_reporting_unknown::<v1::RunTaskRequest>(&json!({"enableEcsManagedTags": true}))
        .expect("a misspelt member is merely unknown");
    assert_eq!(parsed.message.enable_ecs_managed_tags, None);
    assert_eq!(parsed.unknown_members, ["enableEcsManagedTags"]);
}

#[test]
fn integers_reject_strings_and_fractions() {
    let cpu = |value: Value| {
        from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": [{"cpu": value}]}))
            .map(|request| request.container_definitions[0].cpu)
    };
    assert_eq!(cpu(json!(1024)), Ok(Some(1024)));
    assert_eq!(
        cpu(json!("abc")).expect_err("strings are not integers").to_string(),
        r#"containerDefinitions[0].cpu: expected an integer, got "abc""#
    );
    assert_eq!(
        cpu(json!(1.5)).expect_err("fraction").message,
        "expected an integer, got 1.5"
    );
    assert_eq!(
        cpu(json!(true)).expect_err("bool").message,
        "expected an integer, got true"
    );
    assert_eq!(
        cpu(json!(3_000_000_000_u64)).expect_err("too big").message,
        "3000000000 is out of range for int32"
    );
    let version = from_value::<v1::Task>(&json!({"version": u64::MAX})).expect_err("int64 overflow");
    assert_eq!(version.path, "version");
    let family =
        from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"family": 7})).expect_err("numbers are not strings");
    assert_eq!(family.to_string(), "family: expected a string, got 7");
}

#[test]
fn maps_are_objects_of_strings() {
    let input = json!({"containerDefinitions": [{"logConfiguration": {"options": {"max-size": 10}}}]});
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&input).expect_err("map values are strings");
    assert_eq!(err.path, "containerDefinitions[0].logConfiguration.options.max-size");
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": {}}))
        .expect_err("lists are arrays");
    assert_eq!(
        err.to_string(),
        "containerDefinitions: expected an array, got an object"
    );
}

#[test]
fn timestamps_are_epoch_seconds_by_default() {
    let task = v1::Task {
        created_at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_000_000,
        }),
        started_at: Some(Timestamp {
            seconds: 1_700_000_001,
            nanos: 0,
        }),
        ..Default::default()
    };
    let json = to_value(&task, &WriteOptions::default());
    assert_eq!(json["createdAt"], json!(1_700_000_000.123));
    assert_eq!(json["startedAt"], json!(1_700_000_001));
    assert_eq!(
        to_string(&task),
        r#"{"createdAt":1700000000.123,"startedAt":1700000001}"#
    );
    let back: v1::Task = from_value(&json).expect("reads back");
    assert_eq!(back, task);
}

#[test]
fn iso_times_render_with_milliseconds() {
    let task = v1::Task {
        created_at: Some(Timestamp {
            seconds: 1_579_802_254,
            nanos: 402_999_999,
        }),
        stopped_at: Some(Timestamp { seconds: 0, nanos: 0 }),
        ..Default::default()
    };
    let options = WriteOptions {
        time_style: TimeStyle::Iso8601Millis,
        ..Default::default()
    };
    let json = to_value(&task, &options);
    assert_eq!(json["createdAt"], "2020-01-23T17:57:34.402Z");
    assert_eq!(json["stoppedAt"], "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601_millis(MIN_SECONDS, 0), "0001-01-01T00:00:00.000Z");
    assert_eq!(iso8601_millis(MAX_SECONDS, 999_999_999), "9999-12-31T23:59:59.999Z");
    assert_eq!(iso8601_millis(951_782_400, 0), "2000-02-29T00:00:00.000Z");
}

#[test]
fn timestamps_read_from_numbers_and_iso_strings() {
    let created = |value: Value| from_value::<v1::Task>(&json!({"createdAt": value})).map(|task| task.created_at);
    let expected = Some(Timestamp {
        seconds: 1_579_802_254,
        nanos: 402_000_000,
    });
    assert_eq!(created(json!(1_579_802_254.402)), Ok(expected));
    assert_eq!(created(json!("2020-01-23T17:57:34.402Z")), Ok(expected));
    assert_eq!(created(json!("2020-01-23T18:57:34.402+01:00")), Ok(expected));
    assert_eq!(created(json!("2020-01-23t17:57:34.4020000009z")), Ok(expected));
    assert_eq!(
        created(json!(-1.5)),
        Ok(Some(Timestamp {
            seconds: -2,
            nanos: 500_000_000
        }))
    );
    assert_eq!(
        created(json!(1.7e9)),
        Ok(Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0
        }))
    );
    for bad in [
        json!("2020-02-30T00:00:00Z"),
        json!("2020-01-23T17:57:34"),
        json!("yesterday"),
        json!(1e300),
        json!(true),
    ] {
        let err = created(bad.clone()).expect_err("not a timestamp");
        assert_eq!(err.path, "createdAt", "{bad}");
    }
}

#[test]
fn empty_lists_are_omitted_unless_asked() {
    let task = v1::Task {
        task_arn: s("arn"),
        ..Default::default()
    };
    assert_eq!(to_value(&task, &WriteOptions::default()), json!({"taskArn": "arn"}));
    let options = WriteOptions {
        emit_empty_lists: true,
        ..Default::default()
    };
    let json = to_value(&task, &options);
    assert_eq!(json["containers"], json!([]));
    assert_eq!(json["taskArn"], "arn");
}

#[test]
fn set_but_empty_messages_are_written() {
    let task = v1::Task {
        overrides: Some(v1::TaskOverride::default()),
        ..Default::default()
    };
    assert_eq!(to_value(&task, &WriteOptions::default()), json!({"overrides": {}}));
}

#[test]
fn bytes_are_standard_base64() {
    let record = log::ClientTokenRecorded {
        fingerprint: vec![0xfb, 0xff, 0x00, 0x41],
        ..Default::default()
    };
    assert_eq!(
        to_value(&record, &WriteOptions::default()),
        json!({"fingerprint": "+/8AQQ=="})
    );
    assert_eq!(
        from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "+/8AQQ=="})),
        Ok(record.clone())
    );
    assert_eq!(
        from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "+/8AQQ"})),
        Ok(record)
    );
    for input in [b"".as_slice(), b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
        assert_eq!(base64_decode(&base64_encode(input)).as_deref(), Some(input));
    }
    assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    assert!(from_value::<log::ClientTokenRecorded>(&json!({"fingerprint": "a$=="})).is_err());
}

#[test]
fn only_one_member_of_a_oneof_may_be_set() {
    let input = json!({"taskCreated": {}, "clusterDeleted": {"clusterArn": "x"}});
    let err = from_value::<log::Event>(&input).expect_err("a oneof holds one member");
    assert!(err.message.contains("only one of"), "{err}");
    let event: log::Event = from_value(&json!({"clusterDeleted": {"clusterArn": "x"}})).expect("one member");
    assert_eq!(
        event.kind,
        Some(log::event::Kind::ClusterDeleted(log::ClusterDeleted {
            cluster_arn: "x".into()
        }))
    );
}

#[test]
fn documents_must_be_objects_and_well_formed() {
    let err = from_value::<v1::Task>(&json!([1])).expect_err("top level is an object");
    assert_eq!(err.to_string(), "expected an object, got an array");
    let err = from_slice::<v1::Task>(b"{\"taskArn\": ").expect_err("malformed");
    assert_eq!(err.path, "");
    assert!(err.message.contains("line 1 column"), "{err}");
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    // DescriptorProto nests itself, so it can go as deep as the input does.
    let desc = POOL
        .get_message_by_name("google.protobuf.DescriptorProto")
        .expect("descriptor.proto is in the pool");
    let mut nested = json!({"name": "leaf"});
    for _ in 0..100 {
        nested = json!({"nestedType": [nested]});
    }
    let err = Reader::default().message(&desc, &nested, "", 1).expect_err("too deep");
    assert!(err.message.contains("deeper than 64"), "{err}");
    assert!(err.path.starts_with("nestedType[0].nestedType[0]"), "{err}");

    let mut shallow = json!({"name": "leaf"});
    for _ in 0..10 {
        shallow = json!({"nestedType": [shallow]});
    }
    assert!(Reader::default().message(&desc, &shallow, "", 1).is_ok());

    let mut arrays = json!(1);
    for _ in 0..120 {
        arrays = json!([arrays]);
    }
    let err = from_value::<v1::RegisterTaskDefinitionRequest>(&json!({"containerDefinitions": arrays}))
        .expect_err("wrong shape");
    assert_eq!(
        err.to_string(),
        "containerDefinitions[0]: expected an object, got an array"
    );
}

#[test]
fn aws_cli_register_task_definition_input_parses() {
    let input = br#"{"family":"web","networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","containerDefinitions":[{"name":"app","image":"nginx:1.25","essential":true,"portMappings":[{"containerPort":80,"protocol":"tcp"}],"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/web"}}}]}"#;
    let request: v1::RegisterTaskDefinitionRequest = from_slice(input).expect("the CLI's input parses");
    assert_eq!(request.family.as_deref(), Some("web"));
    assert_eq!(request.network_mode(), v1::NetworkMode::Awsvpc);
    assert_eq!(request.requires_compatibilities, [v1::Compatibility::Fargate as i32]);
    assert_eq!(request.cpu.as_deref(), Some("256"));
    let container = &request.container_definitions[0];
    assert_eq!(container.essential, Some(true));
    assert_eq!(container.port_mappings[0].container_port, Some(80));
    assert_eq!(container.port_mappings[0].protocol(), v1::TransportProtocol::Tcp);
    let logs = container
        .log_configuration
        .as_ref()
        .expect("logConfiguration was given");
    assert_eq!(logs.log_driver(), v1::LogDriver::Awslogs);
    assert_eq!(logs.options.get("awslogs-group").map(String::as_str), Some("/ecs/web"));
    assert_eq!(json_len(&request), to_string(&request).len());
    let reparsed: Value = serde_json::from_slice(input).expect("valid JSON");
    assert_eq!(to_value(&request, &WriteOptions::default()), reparsed);
}

#[test]
fn every_ecs_enum_value_but_zero_has_a_spelling() {
    for enum_desc in POOL.all_enums().filter(|e| e.package_name() == "taskledger.v1") {
        let spellings = &ENUMS[enum_desc.full_name()];
        for value in enum_desc.values() {
            assert_eq!(
                spellings.by_number.contains_key(&value.number()),
                value.number() != 0,
                "{} (no `ecs_value` options at all means the descriptor set was encoded \
                 through prost_types, which drops extension options)",
                value.full_name()
            );
        }
    }
}
