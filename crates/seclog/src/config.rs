//! `seclog serve --config FILE`: a TOML file whose keys are `serve`'s long flags.
//!
//! ```toml
//! data = "/var/lib/seclog"
//! http = "0.0.0.0:8080"
//! syslog-tls = "0.0.0.0:6514"
//! tls-cert = "/etc/seclog/server.pem"
//! tls-key = "/etc/seclog/server.key"
//! syslog-allow = ["10.0.0.0/8", "192.168.0.0/16"]
//! ```
//!
//! The file's settings are placed before the command line's, so a flag given on the command
//! line wins over the file (repeatable flags such as `syslog-allow` add up).

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// `args` with the settings of a `--config FILE` (or `--config=FILE`) given to `serve` spliced
/// in right after `serve`; other commands and command lines without one are returned as is.
pub(crate) fn expand(args: Vec<OsString>) -> Result<Vec<OsString>> {
    if args.get(1).and_then(|arg| arg.to_str()) != Some("serve") {
        return Ok(args);
    }
    let mut rest = Vec::new();
    let mut config = None;
    let mut iter = args.iter().skip(2);
    while let Some(arg) = iter.next() {
        match arg.to_str() {
            Some("--config") => {
                let path = iter.next().context("--config needs a file")?;
                config = Some(path.clone());
            }
            Some(text) if text.starts_with("--config=") => {
                config = Some(OsString::from(&text["--config=".len()..]));
            }
            _ => rest.push(arg.clone()),
        }
    }
    let Some(config) = config else {
        return Ok(args);
    };
    let mut expanded: Vec<OsString> = args.iter().take(2).cloned().collect();
    expanded.extend(settings(Path::new(&config))?);
    expanded.extend(rest);
    Ok(expanded)
}

/// The flags a configuration file stands for.
fn settings(path: &Path) -> Result<Vec<OsString>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the configuration {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("parsing the configuration {}", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        if key == "config" {
            bail!("{}: a configuration cannot name another", path.display());
        }
        let flag = OsString::from(format!("--{key}"));
        let scalar = |value: &toml::Value| -> Result<String> {
            Ok(match value {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Float(number) => number.to_string(),
                other => bail!(
                    "{}: {key} = {} is not a string or a number",
                    path.display(),
                    other.type_str()
                ),
            })
        };
        match &value {
            toml::Value::Boolean(true) => flags.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                for item in items {
                    flags.push(flag.clone());
                    flags.push(OsString::from(scalar(item)?));
                }
            }
            other => {
                flags.push(flag);
                flags.push(OsString::from(scalar(other)?));
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn file_settings_come_before_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seclog.toml");
        std::fs::write(
            &path,
            "data = \"/srv/seclog\"\nsyslog-udp = \"0.0.0.0:514\"\nsyslog-allow = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\nquery-timeout-secs = 60\n",
        )
        .unwrap();
        let args: Vec<OsString> = [
            "seclog",
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--http",
            "127.0.0.1:9",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        assert_eq!(
            strings(&expand(args).unwrap()),
            [
                "seclog",
                "serve",
                "--data",
                "/srv/seclog",
                "--query-timeout-secs",
                "60",
                "--syslog-allow",
                "10.0.0.0/8",
                "--syslog-allow",
                "192.168.0.0/16",
                "--syslog-udp",
                "0.0.0.0:514",
                "--http",
                "127.0.0.1:9",
            ]
        );
        let other: Vec<OsString> = ["seclog", "groups", "--config", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(expand(other.clone()).unwrap(), other);
    }
}
