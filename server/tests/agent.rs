//! `capstan agent` processes on a real ZooKeeper: sharding across three agents, a disabled
//! server handing its items over, a trigger firing every instance once, kill -9 during a
//! run failing the running items over, and exclusivity over hundreds of fires with random
//! kills.
//!
//! Each agent runs in its own process group, and a kill takes the whole group, as a dying
//! machine or container takes its processes: the scripts it started die with it.

#[path = "../../runtime/registry/tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use capstan_registry::Registry;
use capstan_scheduler::admin::operations;
use capstan_scheduler::history::{History, Retention, RunQuery};

const NS: &str = "agents";
const SESSION_MS: u64 = 4000;

/// Appends `START|END job item instance ms` lines around a sleep; the context JSON is the
/// last argument, as ElasticJob passes it.
const RECORD_SH: &str = r#"#!/bin/sh
log="$1"; hold="$2"; ctx="$3"
item=$(printf '%s' "$ctx" | sed -n 's/.*"shardingItem":\([0-9]*\).*/\1/p')
job=$(printf '%s' "$ctx" | sed -n 's/.*"jobName":"\([^"]*\)".*/\1/p')
task=$(printf '%s' "$ctx" | sed -n 's/.*"taskId":"\([^"]*\)".*/\1/p')
inst=${task##*@-@READY@-@}
echo "START $job $item $inst $(date +%s%3N)" >> "$log"
sleep "$hold"
echo "END $job $item $inst $(date +%s%3N)" >> "$log"
"#;

/// SIGKILL to the whole process group (`--` so the negative id is not read as an option).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", "--"])
        .arg(format!("-{pgid}"))
        .status();
}

struct Agent {
    child: Child,
    ip: String,
    data: PathBuf,
}

impl Agent {
    fn spawn(zk: &support::ZooKeeper, ip: &str, jobs: &Path, data: &Path) -> Agent {
        let log = std::fs::File::create(data.join("agent.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_capstan"))
            .args(["agent", "--registry"])
            .arg(format!("zookeeper://{}/{NS}", zk.connect()))
            .arg("--jobs")
            .arg(jobs)
            .args(["--ip", ip, "--session-timeout-ms", &SESSION_MS.to_string()])
            .arg("--data-dir")
            .arg(data)
            .args(["--log", "capstan=info"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("agent starts");
        Agent {
            child,
            ip: ip.to_owned(),
            data: data.to_owned(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9 of the agent's process group.
    fn kill9(mut self) -> Instant {
        kill_group(self.pid());
        let at = Instant::now();
        let _ = self.child.wait();
        at
    }

    /// SIGTERM; returns the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "agent ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

struct Fixture {
    zk: support::ZooKeeper,
    dir: tempfile::TempDir,
    log: PathBuf,
    admin: Registry,
}

impl Fixture {
    async fn new() -> Fixture {
        let zk = support::ZooKeeper::start();
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("runs.log");
        std::fs::write(dir.path().join("record.sh"), RECORD_SH).expect("script");
        std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs");
        let admin = zk.session(NS, Duration::from_secs(10)).await;
        Fixture {
            zk,
            dir,
            log,
            admin,
        }
    }

    /// A script job file recording into the run log, holding each item `hold` seconds.
    fn job(&self, name: &str, cron: Option<&str>, items: u32, hold: &str, failover: bool) {
        let cron = cron.map(|c| format!("cron: '{c}'\n")).unwrap_or_default();
        let yaml = format!(
            "jobName: {name}\ntype: SCRIPT\n{cron}shardingTotalCount: {items}\nmonitorExecution: true\n\
             failover: {failover}\nmisfire: false\nprops:\n  script.command.line: /bin/sh {} {} {hold}\n",
            self.dir.path().join("record.sh").display(),
            self.log.display()
        );
        std::fs::write(
            self.dir.path().join("jobs").join(format!("{name}.yaml")),
            yaml,
        )
        .expect("job file");
    }

    fn agent(&self, ip: &str, n: usize) -> Agent {
        let data = self.dir.path().join(format!("agent-{ip}-{n}"));
        std::fs::create_dir_all(&data).expect("data");
        Agent::spawn(&self.zk, ip, &self.dir.path().join("jobs"), &data)
    }

    fn lines(&self) -> Vec<Line> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(Line::parse)
            .collect()
    }

    /// What to look at when a test times out: every node under each of `jobs` with its
    /// value, and the last lines of every agent's log (killed ones included).
    async fn diagnose(&self, jobs: &[&str]) -> String {
        let mut out = String::new();
        let mut stack: Vec<String> = jobs.iter().map(|j| format!("/{j}")).collect();
        while let Some(p) = stack.pop() {
            if let Ok((v, _)) = self.admin.get(&p).await {
                let v = String::from_utf8_lossy(&v);
                let v: String = v.chars().take(80).collect();
                out.push_str(&format!("{p} = {v:?}\n"));
            }
            if let Ok(children) = self.admin.children(&p).await {
                stack.extend(children.iter().map(|c| format!("{p}/{c}")));
            }
        }
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.flatten().map(|e| e.path().join("agent.log")).collect())
            .unwrap_or_default();
        logs.sort();
        for log in logs.iter().filter(|l| l.exists()) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {}\n", log.display()));
            for l in &lines[lines.len().saturating_sub(25)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    async fn owners(&self, job: &str, total: u32) -> BTreeMap<u32, String> {
        let mut out = BTreeMap::new();
        for i in 0..total {
            if let Ok((v, _)) = self
                .admin
                .get(&format!("/{job}/sharding/{i}/instance"))
                .await
            {
                out.insert(i, String::from_utf8_lossy(&v).into_owned());
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Line {
    start: bool,
    job: String,
    item: u32,
    instance: String,
    ms: i64,
}

impl Line {
    fn parse(l: &str) -> Option<Line> {
        let mut p = l.split_whitespace();
        let start = match p.next()? {
            "START" => true,
            "END" => false,
            _ => return None,
        };
        Some(Line {
            start,
            job: p.next()?.to_owned(),
            item: p.next()?.parse().ok()?,
            instance: p.next()?.to_owned(),
            ms: p.next()?.parse().ok()?,
        })
    }

    fn ip(&self) -> &str {
        self.instance.split("@-@").next().unwrap_or("")
    }
}

async fn eventually(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_share_move_trigger_and_fail_over() {
    let f = Fixture::new().await;
    f.job("sweep", Some("* * * * * ?"), 3, "0.2", false);
    f.job("adhoc", None, 3, "0.1", false);
    // Every 10 s, held 4 s: a kill during a run expires (4 s session) and fails over before
    // the next fire, which would otherwise reshard and run the item as a normal fire.
    f.job("longrun", Some("0/10 * * * * ?"), 3, "4", true);
    let ips = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
    let mut agents: Vec<Agent> = ips.iter().map(|ip| f.agent(ip, 0)).collect();

    eventually("each agent owns an item of sweep", 30, async || {
        let owners = f.owners("sweep", 3).await;
        let ips: BTreeSet<&str> = owners
            .values()
            .map(|o| o.split("@-@").next().unwrap_or(""))
            .collect();
        ips.len() == 3
    })
    .await;
    // Our instance nodes say they are Capstan runtimes, in Java's instance YAML.
    let instances = f
        .admin
        .children("/sweep/instances")
        .await
        .expect("instances");
    assert_eq!(instances.len(), 3);
    let (yaml, _) = f
        .admin
        .get(&format!("/sweep/instances/{}", instances[0]))
        .await
        .expect("instance");
    let yaml = String::from_utf8(yaml).expect("utf8");
    assert!(
        yaml.starts_with("jobInstanceId: ")
            && yaml.contains("\nlabels: capstan\nserverIp: 127.0.0.1"),
        "{yaml}"
    );

    // Disable .13: at the next fires its items move, and it runs none of sweep.
    operations::set_server_enabled(&f.admin, "127.0.0.13", false)
        .await
        .expect("disable");
    eventually("items leave the disabled server", 20, async || {
        f.owners("sweep", 3)
            .await
            .values()
            .all(|o| !o.starts_with("127.0.0.13@-@"))
    })
    .await;
    let moved_at = now_ms() + 300;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after: Vec<Line> = f
        .lines()
        .into_iter()
        .filter(|l| l.job == "sweep" && l.start && l.ms > moved_at)
        .collect();
    assert!(!after.is_empty(), "sweep stopped firing");
    assert!(
        after.iter().all(|l| l.ip() != "127.0.0.13"),
        "the disabled server ran items: {after:?}"
    );
    let items: BTreeSet<u32> = after.iter().map(|l| l.item).collect();
    assert_eq!(items.len(), 3, "all items still run on the others");
    operations::set_server_enabled(&f.admin, "127.0.0.13", true)
        .await
        .expect("enable");

    // Trigger the cron-less job: every instance fires once, each item runs once.
    eventually("all agents registered for adhoc", 20, async || {
        f.admin
            .children("/adhoc/instances")
            .await
            .map(|c| c.len())
            .unwrap_or(0)
            == 3
    })
    .await;
    assert_eq!(
        operations::trigger(&f.admin, "adhoc", None)
            .await
            .expect("trigger"),
        3
    );
    eventually("adhoc's three items run", 20, async || {
        f.lines()
            .iter()
            .filter(|l| l.job == "adhoc" && !l.start)
            .count()
            >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let adhoc: Vec<Line> = f
        .lines()
        .into_iter()
        .filter(|l| l.job == "adhoc" && l.start)
        .collect();
    let mut items: Vec<u32> = adhoc.iter().map(|l| l.item).collect();
    items.sort_unstable();
    assert_eq!(items, [0, 1, 2], "each item exactly once: {adhoc:?}");
    let fired: BTreeSet<&str> = adhoc.iter().map(|l| l.ip()).collect();
    assert_eq!(fired.len(), 3, "every instance fired: {adhoc:?}");

    // kill -9 an agent while it runs longrun: its running item fails over.
    let mut victim = None;
    eventually("an agent is running a longrun item", 30, async || {
        let lines = f.lines();
        let running = lines
            .iter()
            .filter(|l| l.job == "longrun" && l.start)
            .find(|s| {
                !lines.iter().any(|e| {
                    !e.start
                        && e.job == s.job
                        && e.item == s.item
                        && e.instance == s.instance
                        && e.ms >= s.ms
                })
            });
        victim = running.cloned();
        victim.is_some()
    })
    .await;
    let victim = victim.expect("victim");
    let index = agents
        .iter()
        .position(|a| a.ip == victim.ip())
        .expect("agent of the running item");
    let killed = agents.remove(index);
    let killed_at = now_ms();
    killed.kill9();
    eventually(
        "the killed agent's item runs again elsewhere",
        30,
        async || {
            f.lines().iter().any(|l| {
                l.start
                    && l.job == "longrun"
                    && l.item == victim.item
                    && l.ms > killed_at
                    && l.ip() != victim.ip()
            })
        },
    )
    .await;
    // A survivor recorded the take-over as a failover run (its history is written a
    // moment after the script starts).
    let mut histories = Vec::new();
    for a in &agents {
        histories.push(
            History::open(&a.data.join("agent-history.db"), Retention::default())
                .await
                .expect("history"),
        );
    }
    eventually(
        &format!("a survivor records a FAILOVER run of item {}", victim.item),
        15,
        async || {
            for history in &histories {
                let page = history
                    .runs(
                        &RunQuery {
                            job: Some("longrun".into()),
                            ..RunQuery::default()
                        },
                        1,
                        200,
                    )
                    .await
                    .expect("runs");
                if page
                    .rows
                    .iter()
                    .any(|r| r.item == victim.item && r.source == "FAILOVER")
                {
                    return true;
                }
            }
            false
        },
    )
    .await;

    // SIGTERM: a clean exit that removes the agent's instance nodes.
    let leaving = agents.pop().expect("agent");
    let ip = leaving.ip.clone();
    let status = leaving.terminate();
    assert!(status.success(), "agent exited with {status}");
    for job in ["sweep", "adhoc", "longrun"] {
        let left = f
            .admin
            .children(&format!("/{job}/instances"))
            .await
            .expect("instances");
        assert!(
            left.iter().all(|i| !i.starts_with(&format!("{ip}@-@"))),
            "{job} still lists the stopped agent: {left:?}"
        );
    }
}

/// Exclusivity with real processes: over at least 200 item fires, with agents killed
/// (kill -9 of the process group) at random moments and restarted, no item ever runs on
/// two instances at once. A killed agent's unfinished item counts as running until the
/// moment of the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_item_runs_twice_at_once_with_agents_killed_at_random() {
    let f = Fixture::new().await;
    f.job("ex1", Some("* * * * * ?"), 3, "0.35", true);
    f.job("ex2", Some("* * * * * ?"), 2, "0.6", true);
    let ips = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
    let mut generation = 0;
    let mut agents: Vec<Agent> = ips.iter().map(|ip| f.agent(ip, 0)).collect();
    // instance id -> the moment it was killed (its items end there at the latest).
    let mut killed: BTreeMap<String, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut kills = 0;
    let mut seed = now_ms() as u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    loop {
        let fires = f.lines().iter().filter(|l| l.start).count();
        if fires >= 200 && kills >= 5 {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "only {fires} fires and {kills} kills in 240 s\n{}",
                f.diagnose(&["ex1", "ex2"]).await
            );
        }
        tokio::time::sleep(Duration::from_millis(3000 + rand() % 4000)).await;
        let victim = (rand() % agents.len() as u64) as usize;
        let agent = agents.remove(victim);
        let ip = agent.ip.clone();
        let pid = agent.pid();
        killed.insert(format!("{ip}@-@{pid}"), now_ms());
        agent.kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rand() % 1500)).await;
        generation += 1;
        agents.push(f.agent(&ip, generation));
    }
    drop(agents);
    let lines = f.lines();
    let fires = lines.iter().filter(|l| l.start).count();
    // Intervals per (job, item): START to END, or to the kill of its instance.
    // (job, item) -> (start, end, instance) of each run.
    type Runs = Vec<(i64, i64, String)>;
    let mut intervals: BTreeMap<(String, u32), Runs> = BTreeMap::new();
    for s in lines.iter().filter(|l| l.start) {
        let end = lines
            .iter()
            .find(|e| {
                !e.start
                    && e.job == s.job
                    && e.item == s.item
                    && e.instance == s.instance
                    && e.ms >= s.ms
            })
            .map(|e| e.ms)
            .or_else(|| killed.get(&s.instance).copied())
            .unwrap_or(i64::MAX);
        intervals
            .entry((s.job.clone(), s.item))
            .or_default()
            .push((s.ms, end, s.instance.clone()));
    }
    let mut overlaps = Vec::new();
    for (key, mut list) in intervals {
        list.sort();
        for pair in list.windows(2) {
            // Millisecond stamps from `date`: an end and the next start may share one.
            if pair[1].0 < pair[0].1 {
                overlaps.push(format!("{key:?}: {:?} and {:?}", pair[0], pair[1]));
            }
        }
    }
    assert!(
        overlaps.is_empty(),
        "items ran twice at once: {overlaps:#?}"
    );
    eprintln!("exclusivity on ZooKeeper: {fires} item fires, {kills} kill -9s, no overlap");
}
