//! Paths under `/{job}` (spec §2), in one place.

/// The node paths of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNodes {
    root: String,
}

impl JobNodes {
    /// Paths of `job`.
    pub fn new(job: &str) -> JobNodes {
        JobNodes {
            root: format!("/{job}"),
        }
    }

    /// `/{job}`.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn sub(&self, rest: &str) -> String {
        self.joined(&[rest])
    }

    /// The root and `parts` joined with `/`, appended in place: the item paths are made
    /// several times per fire, and through `format!` each cost some 800 instructions.
    fn joined(&self, parts: &[&str]) -> String {
        let len = self.root.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut path = String::with_capacity(len);
        path.push_str(&self.root);
        for part in parts {
            path.push('/');
            path.push_str(part);
        }
        path
    }

    /// `/{job}/config`.
    pub fn config(&self) -> String {
        self.sub("config")
    }

    /// `/{job}/servers`.
    pub fn servers(&self) -> String {
        self.sub("servers")
    }

    /// `/{job}/servers/{ip}`.
    pub fn server(&self, ip: &str) -> String {
        self.sub(&format!("servers/{ip}"))
    }

    /// `/{job}/instances`.
    pub fn instances(&self) -> String {
        self.sub("instances")
    }

    /// `/{job}/instances/{id}`.
    pub fn instance(&self, id: &str) -> String {
        self.sub(&format!("instances/{id}"))
    }

    /// `/{job}/sharding`.
    pub fn sharding(&self) -> String {
        self.sub("sharding")
    }

    /// `/{job}/sharding/{item}`.
    pub fn item(&self, item: u32) -> String {
        self.joined(&["sharding", itoa::Buffer::new().format(item)])
    }

    /// `/{job}/sharding/{item}/{leaf}` (`instance`, `running`, `disabled`, `failover`, …).
    pub fn item_leaf(&self, item: u32, leaf: &str) -> String {
        self.joined(&["sharding", itoa::Buffer::new().format(item), leaf])
    }

    /// `/{job}/leader/election/latch`.
    pub fn election_latch(&self) -> String {
        self.sub("leader/election/latch")
    }

    /// `/{job}/leader/election/instance`.
    pub fn leader(&self) -> String {
        self.sub("leader/election/instance")
    }

    /// `/{job}/leader/sharding/necessary`.
    pub fn resharding_necessary(&self) -> String {
        self.sub("leader/sharding/necessary")
    }

    /// `/{job}/leader/sharding/processing`.
    pub fn resharding_processing(&self) -> String {
        self.sub("leader/sharding/processing")
    }

    /// `/{job}/leader/failover/latch`.
    pub fn failover_latch(&self) -> String {
        self.sub("leader/failover/latch")
    }

    /// `/{job}/leader/failover/items`.
    pub fn failover_items(&self) -> String {
        self.sub("leader/failover/items")
    }

    /// `/{job}/leader/failover/items/{item}`.
    pub fn failover_item(&self, item: u32) -> String {
        self.sub(&format!("leader/failover/items/{item}"))
    }

    /// `/{job}/trigger`.
    pub fn triggers(&self) -> String {
        self.sub("trigger")
    }

    /// `/{job}/trigger/{id}`.
    pub fn trigger(&self, id: &str) -> String {
        self.sub(&format!("trigger/{id}"))
    }

    /// `/{job}/paused` (Capstan's extension).
    pub fn paused(&self) -> String {
        self.sub("paused")
    }

    /// `/{job}/systemTime/current` (the clock-skew check).
    pub fn system_time(&self) -> String {
        self.sub("systemTime/current")
    }
}
