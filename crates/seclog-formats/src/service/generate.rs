//! Seeded generators of realistic service log records, for benchmarks and demos: the same
//! seed gives the same records. Shapes follow the real samples (CloudTrail records carry the
//! keys every record of `../shared/data/cloudtrail/invictus` has, ALB lines the 29 fields of
//! the samples) and AWS's field lists; a small population of principals, hosts and resources
//! repeats, as in real accounts.

use fastrand::Rng;
use serde_json::{Value, json};

use super::Format;

/// Generates records of one format.
pub struct Generator {
    rng: Rng,
    format: Format,
    /// Unix seconds of the next record.
    clock: i64,
    account: String,
}

/// Formats `gen` can produce.
pub const GENERATED_FORMATS: [Format; 4] = [
    Format::CloudTrail,
    Format::VpcFlow,
    Format::Route53,
    Format::Alb,
];

const REGIONS: [&str; 4] = ["us-east-1", "us-east-1", "eu-west-1", "us-west-2"];
const USERS: [&str; 8] = [
    "alice",
    "bob",
    "carol",
    "deploy-bot",
    "terraform",
    "dana",
    "erin",
    "backup-svc",
];
const ROLES: [&str; 4] = ["ReadOnly", "Admin", "LambdaExec", "GitHubActions"];
const AGENTS: [&str; 5] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off command/s3.ls",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0 Safari/537.36",
    "console.amazonaws.com",
];

/// (eventSource, eventName, readOnly, weight)
const CALLS: [(&str, &str, bool, u32); 20] = [
    ("s3.amazonaws.com", "GetObject", true, 18),
    ("s3.amazonaws.com", "PutObject", false, 8),
    ("s3.amazonaws.com", "ListBuckets", true, 4),
    ("ec2.amazonaws.com", "DescribeInstances", true, 12),
    ("ec2.amazonaws.com", "RunInstances", false, 1),
    (
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        false,
        1,
    ),
    ("iam.amazonaws.com", "ListUsers", true, 4),
    ("iam.amazonaws.com", "GetUser", true, 4),
    ("iam.amazonaws.com", "CreateAccessKey", false, 1),
    ("iam.amazonaws.com", "AttachUserPolicy", false, 1),
    ("sts.amazonaws.com", "AssumeRole", true, 10),
    ("sts.amazonaws.com", "GetCallerIdentity", true, 6),
    ("kms.amazonaws.com", "Decrypt", true, 10),
    ("kms.amazonaws.com", "GenerateDataKey", true, 5),
    ("lambda.amazonaws.com", "Invoke", false, 4),
    ("logs.amazonaws.com", "PutLogEvents", false, 3),
    ("cloudtrail.amazonaws.com", "LookupEvents", true, 1),
    ("cloudtrail.amazonaws.com", "StopLogging", false, 1),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true, 3),
    ("signin.amazonaws.com", "ConsoleLogin", false, 2),
];

impl Generator {
    /// A generator of `format` records starting at Unix second `start`.
    pub fn new(format: Format, seed: u64, start: i64) -> Result<Generator, String> {
        if !GENERATED_FORMATS.contains(&format) {
            return Err(format!(
                "gen makes cloudtrail, vpcflow, route53 and alb records, not {}",
                format.name()
            ));
        }
        let mut rng = Rng::with_seed(seed);
        let account = format!("{:012}", rng.u64(100_000_000_000..999_999_999_999));
        Ok(Generator {
            rng,
            format,
            clock: start,
            account,
        })
    }

    /// The account id records carry.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Unix second of the next record.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// A header line to put before records (VPC Flow Logs files have one).
    pub fn header(&self) -> Option<&'static str> {
        (self.format == Format::VpcFlow).then_some(
            "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
        )
    }

    /// The next record (a JSON text or a log line, without a newline).
    pub fn next_record(&mut self) -> String {
        // About 50 records per second on average, in bursts.
        if self.rng.u8(0..50) == 0 {
            self.clock += 1;
        }
        match self.format {
            Format::CloudTrail => self.cloudtrail().to_string(),
            Format::VpcFlow => self.vpc_flow(),
            Format::Route53 => self.route53().to_string(),
            _ => self.alb(),
        }
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get(self.rng.usize(0..items.len().max(1)))
            .copied()
            .unwrap_or_default()
    }

    fn uuid(&mut self) -> String {
        let hex = format!("{:016x}{:016x}", self.rng.u64(..), self.rng.u64(..));
        format!(
            "{}-{}-4{}-{}-{}",
            hex.get(0..8).unwrap_or_default(),
            hex.get(8..12).unwrap_or_default(),
            hex.get(13..16).unwrap_or_default(),
            hex.get(16..20).unwrap_or_default(),
            hex.get(20..32).unwrap_or_default()
        )
    }

    fn public_ip(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.pick(&["198", "203", "52", "34", "185", "45"]),
            self.rng.u8(0..=255),
            self.rng.u8(0..=255),
            self.rng.u8(1..=254)
        )
    }

    fn private_ip(&mut self) -> String {
        format!("10.0.{}.{}", self.rng.u8(0..8), self.rng.u8(1..=254))
    }

    fn key_id(&mut self, prefix: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let body: String = (0..16)
            .map(|_| {
                char::from(
                    ALPHABET
                        .get(self.rng.usize(0..ALPHABET.len()))
                        .copied()
                        .unwrap_or(b'A'),
                )
            })
            .collect();
        format!("{prefix}{body}")
    }

    fn time(&self) -> String {
        rfc3339(self.clock)
    }

    fn cloudtrail(&mut self) -> Value {
        let total: u32 = CALLS.iter().map(|call| call.3).sum();
        let mut roll = self.rng.u32(0..total);
        let (source, name, read_only, _) = CALLS
            .iter()
            .find(|call| {
                if roll < call.3 {
                    true
                } else {
                    roll -= call.3;
                    false
                }
            })
            .copied()
            .unwrap_or(CALLS[0]);
        let region = self.pick(&REGIONS);
        let account = self.account.clone();
        let assumed = self.rng.u8(0..3) == 0;
        let user = self.pick(&USERS);
        let identity = if assumed {
            let role = self.pick(&ROLES);
            json!({
                "type": "AssumedRole",
                "principalId": format!("{}:{user}", self.key_id("AROA")),
                "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{user}"),
                "accountId": account,
                "accessKeyId": self.key_id("ASIA"),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": self.key_id("AROA"),
                        "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": self.time(), "mfaAuthenticated": "false"}
                }
            })
        } else {
            json!({
                "type": "IAMUser",
                "principalId": self.key_id("AIDA"),
                "arn": format!("arn:aws:iam::{account}:user/{user}"),
                "accountId": account,
                "accessKeyId": self.key_id("AKIA"),
                "userName": user
            })
        };
        let source_ip = if self.rng.u8(0..4) == 0 {
            self.private_ip()
        } else {
            self.public_ip()
        };
        let request_id = self.uuid();
        let mut record = json!({
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": self.time(),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": source_ip,
            "userAgent": self.pick(&AGENTS),
            "requestParameters": self.parameters(name),
            "responseElements": Value::Null,
            "requestID": request_id,
            "eventID": self.uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": !matches!(name, "GetObject" | "PutObject" | "Invoke"),
            "recipientAccountId": account,
            "eventCategory": if matches!(name, "GetObject" | "PutObject" | "Invoke") { "Data" } else { "Management" },
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": format!("{}.{region}.amazonaws.com", source.trim_end_matches(".amazonaws.com"))}
        });
        if name == "ConsoleLogin" {
            let failed = self.rng.u8(0..4) == 0;
            set(&mut record, "eventType", json!("AwsConsoleSignIn"));
            set(&mut record, "requestParameters", Value::Null);
            set(
                &mut record,
                "responseElements",
                json!({"ConsoleLogin": if failed { "Failure" } else { "Success" }}),
            );
            set(
                &mut record,
                "additionalEventData",
                json!({
                    "LoginTo": "https://console.aws.amazon.com/console/home",
                    "MobileVersion": "No",
                    "MFAUsed": if self.rng.bool() { "Yes" } else { "No" }
                }),
            );
            if failed {
                set(&mut record, "errorMessage", json!("Failed authentication"));
            }
        } else if self.rng.u8(0..20) == 0 {
            let message = format!(
                "User: {} is not authorized to perform: {}:{name}",
                super::ocsf::str_at(&record, "userIdentity.arn").unwrap_or_default(),
                source.trim_end_matches(".amazonaws.com")
            );
            set(&mut record, "errorCode", json!("AccessDenied"));
            set(&mut record, "errorMessage", json!(message));
        }
        record
    }

    fn parameters(&mut self, name: &str) -> Value {
        let account = self.account.clone();
        match name {
            "GetObject" | "PutObject" => json!({
                "bucketName": format!("{}-data-{}", self.pick(&["app", "logs", "backup"]), self.account),
                "key": format!("{}/{}.json", self.pick(&["2024", "reports", "exports"]), self.rng.u32(0..100_000)),
                "Host": "s3.amazonaws.com"
            }),
            "DescribeInstances" => json!({"instancesSet": {}, "filterSet": {}}),
            "AssumeRole" => json!({
                "roleArn": format!("arn:aws:iam::{account}:role/{}", self.pick(&ROLES)),
                "roleSessionName": self.pick(&USERS)
            }),
            "Decrypt" | "GenerateDataKey" => json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            "Invoke" => {
                json!({"functionName": format!("arn:aws:lambda:us-east-1:{account}:function:{}", self.pick(&["api", "worker", "thumbnailer"]))})
            }
            "AuthorizeSecurityGroupIngress" => json!({
                "groupId": format!("sg-{:017x}", self.rng.u64(..) >> 4),
                "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                    "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}
            }),
            _ => Value::Null,
        }
    }

    fn vpc_flow(&mut self) -> String {
        let interface = format!("eni-{:017x}", self.rng.u64(0..64));
        let inbound = self.rng.bool();
        let (source, destination) = if inbound {
            (self.public_ip(), self.private_ip())
        } else {
            (self.private_ip(), self.public_ip())
        };
        let protocol = *[6u8, 6, 6, 17, 17, 1]
            .get(self.rng.usize(0..6))
            .unwrap_or(&6);
        let service_port = *[443u16, 443, 80, 22, 53, 3389, 5432]
            .get(self.rng.usize(0..7))
            .unwrap_or(&443);
        let ephemeral = self.rng.u16(32_768..61_000);
        // The client's ephemeral port talks to the service's port, either way round.
        let (source_port, destination_port) = (ephemeral, service_port);
        let packets = self.rng.u32(1..200);
        let bytes = u64::from(packets) * self.rng.u64(40..1500);
        let action = if inbound && self.rng.u8(0..5) == 0 {
            "REJECT"
        } else {
            "ACCEPT"
        };
        let start = self.clock - 60;
        if self.rng.u16(0..500) == 0 {
            return format!(
                "2 {} {interface} - - - - - - - {start} {} - NODATA",
                self.account, self.clock
            );
        }
        format!(
            "2 {} {interface} {source} {destination} {source_port} {destination_port} {protocol} {packets} {bytes} {start} {} {action} OK",
            self.account, self.clock
        )
    }

    fn route53(&mut self) -> Value {
        let name = format!(
            "{}.{}.",
            self.pick(&["api", "www", "db", "auth", "cdn", "s3", "sqs", "updates"]),
            self.pick(&[
                "example.com",
                "internal.corp",
                "amazonaws.com",
                "github.com",
                "ubuntu.com",
            ])
        );
        let kind = self.pick(&["A", "A", "AAAA", "CNAME", "TXT", "MX"]);
        let rcode = match self.rng.u8(0..40) {
            0..=2 => "NXDOMAIN",
            3 => "SERVFAIL",
            _ => "NOERROR",
        };
        let answers = if rcode == "NOERROR" {
            json!([{"Rdata": self.public_ip(), "Type": kind, "Class": "IN"}])
        } else {
            json!([])
        };
        json!({
            "version": "1.100000",
            "account_id": self.account,
            "region": self.pick(&REGIONS),
            "vpc_id": format!("vpc-{:017x}", self.rng.u64(0..4)),
            "query_timestamp": self.time(),
            "query_name": name,
            "query_type": kind,
            "query_class": "IN",
            "rcode": rcode,
            "answers": answers,
            "srcaddr": self.private_ip(),
            "srcport": self.rng.u16(1024..65535).to_string(),
            "transport": "UDP",
            "srcids": {"instance": format!("i-{:017x}", self.rng.u64(0..32))}
        })
    }

    fn alb(&mut self) -> String {
        let method = self.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE", "HEAD"]);
        let path = self.pick(&[
            "/",
            "/api/v1/orders",
            "/api/v1/users/42",
            "/login",
            "/static/app.js",
            "/.env",
            "/wp-login.php",
            "/health",
        ]);
        let status = match path {
            "/.env" | "/wp-login.php" => 404,
            _ => *[200u16, 200, 200, 201, 301, 403, 500]
                .get(self.rng.usize(0..7))
                .unwrap_or(&200),
        };
        let client = self.public_ip();
        let target = self.private_ip();
        let time = format!(
            "{}.{:06}Z",
            rfc3339(self.clock).trim_end_matches('Z'),
            self.rng.u32(0..1_000_000)
        );
        let received = self.rng.u32(200..2000);
        let sent = self.rng.u32(200..50_000);
        let trace = format!(
            "Root=1-{:08x}-{:024x}",
            self.clock,
            u128::from(self.rng.u64(..)) << 32 | u128::from(self.rng.u32(..))
        );
        format!(
            "https {time} app/web-prod/50dc6c495c0c9188 {client}:{} {target}:80 0.001 0.{:03} 0.000 {status} {status} {received} {sent} \"{method} https://shop.example.com:443{path} HTTP/1.1\" \"{}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:{}:targetgroup/web/73e2d6bc24d8a067 \"{trace}\" \"shop.example.com\" \"arn:aws:acm:us-east-1:{}:certificate/12345678-1234-1234-1234-123456789012\" 1 {time} \"forward\" \"-\" \"-\" \"{target}:80\" \"{status}\" \"-\" \"-\"",
            self.rng.u16(1024..65535),
            self.rng.u16(1..999),
            self.pick(&AGENTS),
            self.account,
            self.account,
        )
    }
}

/// Sets a member of a JSON object.
fn set(record: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = record {
        map.insert(key.to_string(), value);
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: i64) -> String {
    seclog_model::Timestamp::from_unix_nanos(secs.saturating_mul(1_000_000_000))
        .to_rfc3339()
        .split('.')
        .next()
        .map(|prefix| format!("{prefix}Z"))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::service::{DecodeOptions, Decoded, Item, decode_object};

    #[test]
    fn generated_records_decode_and_repeat_with_the_seed() {
        for format in GENERATED_FORMATS {
            let mut generator = Generator::new(format, 7, 1_714_557_600).unwrap();
            let mut text = String::new();
            if let Some(header) = generator.header() {
                text.push_str(header);
                text.push('\n');
            }
            for _ in 0..2_000 {
                text.push_str(&generator.next_record());
                text.push('\n');
            }
            let Decoded::Items(items) =
                decode_object(format, text.as_bytes(), &DecodeOptions::default())
            else {
                panic!("records")
            };
            assert_eq!(items.len(), 2_000, "{format:?}");
            for item in &items {
                assert!(matches!(item, Item::Event(_)), "{format:?}: {item:?}");
            }
            let mut again = Generator::new(format, 7, 1_714_557_600).unwrap();
            let mut first = Generator::new(format, 7, 1_714_557_600).unwrap();
            assert_eq!(again.next_record(), first.next_record());
            let mut other = Generator::new(format, 8, 1_714_557_600).unwrap();
            assert_ne!(other.next_record(), again.next_record());
        }
        assert!(Generator::new(Format::Waf, 1, 0).is_err());
    }
}
