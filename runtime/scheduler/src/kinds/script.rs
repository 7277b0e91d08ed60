//! Script jobs (spec §9): `script.command.line` is split as Apache commons-exec splits a
//! command line, the item's sharding context JSON is appended as one more argument, and a
//! non-zero exit is a failure. Capstan adds a timeout (`script.timeout.milliseconds`,
//! default 10 minutes) and keeps stdout and stderr in the run record.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::{BoxFuture, Execute, ItemEnv, ItemOutcome, millis_prop, truncate};

pub(crate) const COMMAND_LINE: &str = "script.command.line";
const TIMEOUT: &str = "script.timeout.milliseconds";
const DEFAULT_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Bytes of stdout and of stderr kept in a run record.
const OUTPUT_LIMIT: usize = 32 * 1024;
/// How long output is still read after the script ended: a background process it left
/// behind may hold the pipes open indefinitely.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// A script job's settings, from its props.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSettings {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// When the script is killed.
    pub timeout: Duration,
}

impl ScriptSettings {
    /// Reads the props.
    ///
    /// # Errors
    /// `(prop, problem)` for the first unusable prop.
    pub fn from_props(
        props: &BTreeMap<String, String>,
    ) -> Result<ScriptSettings, (String, String)> {
        let line = props.get(COMMAND_LINE).map(|l| l.trim()).unwrap_or("");
        if line.is_empty() {
            return Err((
                COMMAND_LINE.into(),
                "a script job needs the command to run".into(),
            ));
        }
        let argv = split_command_line(line).map_err(|e| (COMMAND_LINE.to_owned(), e))?;
        Ok(ScriptSettings {
            argv,
            timeout: millis_prop(props, TIMEOUT, DEFAULT_TIMEOUT_MS)?,
        })
    }
}

/// Splits like commons-exec's `CommandLine.parse`: on whitespace, with `'…'` and `"…"`
/// quoting a part (no escapes inside quotes).
fn split_command_line(line: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_part = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_part = true;
            }
            None if c.is_whitespace() => {
                if in_part {
                    parts.push(std::mem::take(&mut current));
                    in_part = false;
                }
            }
            None => {
                current.push(c);
                in_part = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unbalanced quote {q} in {line:?}"));
    }
    if in_part {
        parts.push(current);
    }
    Ok(parts)
}

pub(crate) struct Script;

impl Execute for Script {
    fn run(&self, env: ItemEnv) -> BoxFuture<ItemOutcome> {
        Box::pin(run(env))
    }
}

async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}

async fn run(env: ItemEnv) -> ItemOutcome {
    let settings = match ScriptSettings::from_props(&env.config.props) {
        Ok(s) => s,
        Err((prop, why)) => return ItemOutcome::failed(format!("{prop}: {why}")),
    };
    let (program, args) = settings.argv.split_first().expect("argv is never empty");
    let mut command = Command::new(program);
    command
        .args(args)
        .arg(env.context.to_json())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If the run is abandoned (fenced off, or the runtime stops) the script goes too.
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return ItemOutcome::failed(format!("cannot start {program:?}: {e}")),
    };
    let stdout = child.stdout.take().map(|s| tokio::spawn(read_all(s)));
    let stderr = child.stderr.take().map(|s| tokio::spawn(read_all(s)));
    let waited = tokio::time::timeout(settings.timeout, child.wait()).await;
    let timed_out = waited.is_err();
    let status = match waited {
        Ok(status) => status,
        Err(_) => {
            let _ = child.kill().await;
            Err(std::io::Error::other("timeout"))
        }
    };
    let mut output = String::new();
    for (name, task) in [("stdout", stdout), ("stderr", stderr)] {
        if let Some(mut task) = task {
            let text = match tokio::time::timeout(OUTPUT_GRACE, &mut task).await {
                Ok(read) => read.unwrap_or_default(),
                Err(_) => {
                    task.abort();
                    format!(
                        "(still held open {} s after the script ended, by a process it started; not read)",
                        OUTPUT_GRACE.as_secs()
                    )
                }
            };
            if !text.is_empty() {
                output.push_str(&format!("[{name}]\n{}\n", truncate(&text, OUTPUT_LIMIT)));
            }
        }
    }
    let output = (!output.is_empty()).then_some(output);
    let failure = match (timed_out, status) {
        (true, _) => Some(format!(
            "killed after {} ms ({TIMEOUT})",
            settings.timeout.as_millis()
        )),
        (false, Ok(s)) if s.success() => None,
        (false, Ok(s)) => Some(match s.code() {
            Some(code) => format!("exited with code {code}"),
            None => format!("ended by a signal ({s})"),
        }),
        (false, Err(e)) => Some(format!("waiting for the script failed: {e}")),
    };
    ItemOutcome { failure, output }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_commons_exec() {
        assert_eq!(
            split_command_line(r#"/bin/sh -c 'echo "a b"'  x"y z""#).expect("valid"),
            ["/bin/sh", "-c", "echo \"a b\"", "xy z"]
        );
        assert!(split_command_line("echo 'open").is_err());
        assert!(ScriptSettings::from_props(&BTreeMap::new()).is_err());
    }

    fn env(line: &str, timeout_ms: Option<&str>) -> ItemEnv {
        let mut props = vec![(COMMAND_LINE, line)];
        props.extend(timeout_ms.map(|t| (TIMEOUT, t)));
        crate::kinds::test_env(&props)
    }

    #[tokio::test]
    async fn scripts_get_the_context_and_report_exit_codes() {
        let ok = Script
            .run(env(r#"/bin/sh -c 'echo "got $1"; echo warn >&2' sh"#, None))
            .await;
        assert_eq!(ok.failure, None);
        let out = ok.output.expect("output");
        assert!(out.contains(r#"got {"jobName":"j""#), "{out}");
        assert!(out.contains(r#""shardingItem":0"#), "{out}");
        assert!(out.contains("[stderr]\nwarn"), "{out}");

        let failed = Script.run(env("/bin/sh -c 'exit 3'", None)).await;
        assert_eq!(failed.failure.as_deref(), Some("exited with code 3"));

        let missing = Script.run(env("/no/such/program", None)).await;
        assert!(missing.failure.expect("fails").contains("cannot start"));

        let slow = Script.run(env("/bin/sh -c 'sleep 5'", Some("200"))).await;
        assert_eq!(
            slow.failure.as_deref(),
            Some("killed after 200 ms (script.timeout.milliseconds)")
        );
    }
}
