//! A real database: PostgreSQL from Debian with the pgaudit extension (`scripts/test` installs
//! `postgresql-<major>-pgaudit`), a few statements run through psql, the server's log imported
//! with `seclog import --format pgaudit`, and every statement found as an event.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Store, free_port, run};
use serde_json::Value;

/// The newest installed PostgreSQL's bin directory.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/test installs it)")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let major = versions.last().expect("a PostgreSQL version");
    let lib = format!("/usr/lib/postgresql/{major}/lib/pgaudit.so");
    assert!(
        Path::new(&lib).exists(),
        "{lib} is missing: run scripts/test (it installs postgresql-{major}-pgaudit)"
    );
    PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"))
}

/// A PostgreSQL command, as the `postgres` user when the tests run as root (PostgreSQL refuses
/// to run as root).
fn pg_command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

struct Postgres {
    child: Child,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pgaudit_statements_are_imported_as_events() {
    let bin = pg_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root)
            .status()
            .expect("chown");
        assert!(status.success());
    }
    let pgdata = root.join("pgdata");
    let output = pg_command(&bin, "initdb")
        .args(["-D"])
        .arg(&pgdata)
        .args(["-U", "postgres", "--auth=trust", "--no-sync"])
        .output()
        .expect("initdb runs");
    assert!(output.status.success(), "{}", common::describe(&output));

    let port = free_port().to_string();
    let log_path = root.join("postgresql.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let socket_dir = root.to_string_lossy().to_string();
    let child = pg_command(&bin, "postgres")
        .arg("-D")
        .arg(&pgdata)
        .args(["-p", &port, "-k", &socket_dir])
        .args(["-c", "listen_addresses="])
        .args(["-c", "shared_preload_libraries=pgaudit"])
        .args(["-c", "pgaudit.log=read,write,ddl,role"])
        .args(["-c", "pgaudit.log_parameter=on"])
        .args(["-c", "log_line_prefix=%m [%p] %q%u@%d "])
        .args(["-c", "log_timezone=UTC"])
        .args(["-c", "fsync=off"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postgres starts");
    let server = Postgres { child };
    let psql = |sql: &str| {
        pg_command(&bin, "psql")
            .args([
                "-h",
                &socket_dir,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql])
            .output()
            .expect("psql runs")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !psql("SELECT 1").status.success() {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let statements = [
        "CREATE EXTENSION IF NOT EXISTS pgaudit",
        "CREATE TABLE orders (id int PRIMARY KEY, note text)",
        "INSERT INTO orders VALUES (1, 'first, with a comma'), (2, 'second')",
        "UPDATE orders SET note = 'changed' WHERE id = 2",
        "SELECT note FROM orders WHERE id = 1",
        "DELETE FROM orders WHERE id = 1",
        "CREATE ROLE auditor_probe LOGIN",
        "GRANT SELECT ON orders TO auditor_probe",
        "SELECT count(*)\nFROM orders\nWHERE note <> 'x'",
    ];
    for sql in statements {
        let output = psql(sql);
        assert!(
            output.status.success(),
            "{sql}: {}",
            common::describe(&output)
        );
    }
    drop(server);

    let log_text = std::fs::read_to_string(&log_path).expect("log");
    assert!(
        log_text.contains("AUDIT: SESSION"),
        "no audit lines:\n{log_text}"
    );
    let store = Store::new();
    store.init();
    let data = store.data_arg();
    let log_arg = log_path.to_string_lossy().to_string();
    let output = run([
        "import", "--data", &data, "--format", "pgaudit", "--quiet", &log_arg,
    ]);
    assert!(output.status.success(), "{}", common::describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("1 imported"), "{stdout}");
    assert!(stdout.contains(" 0 dead letters"), "{stdout}\n{log_text}");

    let query = |text: &str| -> Vec<Value> {
        let output = run([
            "query",
            "--data",
            &data,
            "--group",
            "aws/pgaudit",
            "--start",
            "2000-01-01T00:00:00Z",
            "--output",
            "json",
            text,
        ]);
        assert!(output.status.success(), "{}", common::describe(&output));
        let answer: Value = serde_json::from_slice(&output.stdout).expect("json");
        answer["rows"].as_array().expect("rows").clone()
    };
    let audited = query(
        "filter ispresent(audit_type) | fields statement, class, command, activity_name, database.name",
    );
    for sql in &statements[1..] {
        assert!(
            audited
                .iter()
                .any(|row| row["statement"].as_str() == Some(sql)),
            "{sql:?} is not among the audit events: {audited:#?}"
        );
    }
    let find = |sql: &str| {
        audited
            .iter()
            .find(|row| row["statement"].as_str() == Some(sql))
            .expect("statement")
            .clone()
    };
    let insert = find(statements[2]);
    assert_eq!(insert["class"], "WRITE");
    assert_eq!(insert["command"], "INSERT");
    assert_eq!(insert["activity_name"], "Write");
    assert_eq!(insert["database.name"], "postgres");
    let grant = find(statements[7]);
    assert_eq!(grant["class"], "ROLE");
    let multi_line = find(statements[8]);
    assert_eq!(multi_line["activity_name"], "Query");
    let by_class = query("filter class_uid = 6005 | stats count(*) as n by class");
    assert!(by_class.len() >= 4, "{by_class:?}");
}
