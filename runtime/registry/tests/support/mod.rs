//! Test harness: a real, standalone ZooKeeper from Debian's `zookeeper` package, on
//! 127.0.0.1 and a free port, in a temporary directory. Stopped by PID on drop. Tests
//! never use a ZooKeeper left running by hand.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// A running ZooKeeper.
pub struct ZooKeeper {
    child: Child,
    dir: PathBuf,
    /// Its client port.
    pub port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn four_letter(port: u16, cmd: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_millis(500),
    ) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(cmd.as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn spawn(dir: &std::path::Path) -> Child {
    // Benchmarks hold hundreds of thousands of nodes and need a bigger heap.
    let heap = format!(
        "-Xmx{}",
        std::env::var("CAPSTAN_ZK_HEAP").unwrap_or_else(|_| "256m".into())
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("zk.log"))
        .expect("log");
    // Tests want a server that starts fast: the C1 compiler only. Benchmarks
    // (`CAPSTAN_ZK_PRODUCTION_JVM`) measure against a server compiled as production runs
    // it, by C2 once warm: C1 alone makes every request several times slower. Both use the
    // serial collector, whose pauses on a small heap stay short on two cores.
    let jvm: &[&str] = if std::env::var_os("CAPSTAN_ZK_PRODUCTION_JVM").is_some() {
        &["-XX:+UseSerialGC"]
    } else {
        &["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
    };
    Command::new("java")
        .arg(heap)
        .args(jvm)
        .args(["-cp", CLASSPATH])
        .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
        .arg(dir.join("zoo.cfg"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("java starts")
}

impl ZooKeeper {
    /// Starts a server and waits until it answers `srvr` as standalone.
    pub fn start() -> ZooKeeper {
        assert!(
            std::path::Path::new("/usr/share/java/zookeeper.jar").exists(),
            "Debian's zookeeper package is missing: run `make test` (it installs it)"
        );
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("capstan-zk-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("zk dir");
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat,mntr,conf\nmaxClientCnxns=0\n",
                dir.join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let child = spawn(&dir);
        let zk = ZooKeeper { child, dir, port };
        zk.wait_ready();
        zk
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !four_letter(self.port, "srvr").contains("Mode: standalone") {
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server process (SIGKILL), keeping its data.
    #[allow(dead_code)]
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data.
    #[allow(dead_code)]
    pub fn restart(&mut self) {
        self.child = spawn(&self.dir);
        self.wait_ready();
    }

    /// The server's process id (to read its CPU time).
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:port`.
    pub fn connect(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A session on `namespace`, with no digest, timing out after `timeout`.
    #[allow(dead_code)]
    pub async fn session(&self, namespace: &str, timeout: Duration) -> capstan_registry::Registry {
        capstan_registry::Registry::zookeeper(capstan_registry::ZkSettings {
            connect: self.connect().parse().expect("connect"),
            namespace: namespace.into(),
            digest: None,
            session_timeout: timeout,
        })
        .await
        .expect("a ZooKeeper session")
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
