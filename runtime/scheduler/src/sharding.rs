//! ElasticJob's built-in sharding strategies, exactly as Java computes them
//! (`sharding-examples.md`).
//!
//! Every strategy takes the available instances *in the order given* (at runtime:
//! descending Java string order, see [`crate::instance::sort_descending`]) and returns, per
//! instance in that order, the items it owns.

use std::str::FromStr;

use crate::Error;

/// A sharding strategy type, as named in `jobShardingStrategyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `AVG_ALLOCATION` (the default).
    AvgAllocation,
    /// `ODEVITY`: reverse the list when the job name's hash is even.
    Odevity,
    /// `ROUND_ROBIN`: rotate the list by the job name's hash.
    RoundRobin,
    /// `SINGLE_SHARDING_BALANCE` (3.0.5+): rotate by hash plus the current time.
    SingleShardingBalance,
}

impl Strategy {
    /// From the config value; null or empty means the default, as in Java.
    ///
    /// # Errors
    /// [`Error::UnknownStrategy`].
    pub fn from_config(value: Option<&str>) -> Result<Strategy, Error> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Strategy::AvgAllocation),
            Some(v) => v.parse(),
        }
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::AvgAllocation => "AVG_ALLOCATION",
            Strategy::Odevity => "ODEVITY",
            Strategy::RoundRobin => "ROUND_ROBIN",
            Strategy::SingleShardingBalance => "SINGLE_SHARDING_BALANCE",
        }
    }

    /// Assigns items `0..total` to `instances` (in the order given). `now_ms` matters only
    /// to `SINGLE_SHARDING_BALANCE`, which (like Java's) is not reproducible.
    ///
    /// # Errors
    /// [`Error::HashOverflow`] for a job name whose hash is `Integer.MIN_VALUE`, where
    /// Java's rotating strategies throw.
    pub fn assign<'a, T>(
        self,
        job_name: &str,
        instances: &'a [T],
        total: u32,
        now_ms: i64,
    ) -> Result<Vec<(&'a T, Vec<u32>)>, Error> {
        let n = instances.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let h = java_hash(job_name);
        let ordered: Vec<&T> = match self {
            Strategy::AvgAllocation => instances.iter().collect(),
            Strategy::Odevity => {
                // Java's `%` keeps the sign: -3 % 2 == -1 counts as odd.
                if h % 2 == 0 {
                    instances.iter().rev().collect()
                } else {
                    instances.iter().collect()
                }
            }
            Strategy::RoundRobin => rotate(instances, h, job_name, "ROUND_ROBIN")?,
            Strategy::SingleShardingBalance => {
                // `(int) System.currentTimeMillis()` truncates to 32 bits, then the sum wraps.
                rotate(
                    instances,
                    h.wrapping_add(now_ms as i32),
                    job_name,
                    "SINGLE_SHARDING_BALANCE",
                )?
            }
        };
        Ok(average(&ordered, total))
    }
}

impl FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Strategy, Error> {
        [
            Strategy::AvgAllocation,
            Strategy::Odevity,
            Strategy::RoundRobin,
            Strategy::SingleShardingBalance,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| Error::UnknownStrategy(s.to_owned()))
    }
}

/// Java's `String.hashCode`: `h = 31·h + c` over UTF-16 code units, wrapping.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Java: `offset = Math.abs(h) % n`; if non-zero, `rotated[i] = list[(i + offset) % n]`.
fn rotate<'a, T>(
    list: &'a [T],
    h: i32,
    job: &str,
    strategy: &'static str,
) -> Result<Vec<&'a T>, Error> {
    let n = list.len() as i32;
    // `Math.abs(Integer.MIN_VALUE)` is still negative in Java.
    let offset = h.wrapping_abs() % n;
    if offset < 0 {
        return Err(Error::HashOverflow(job.to_owned(), strategy));
    }
    Ok((0..n).map(|i| &list[((i + offset) % n) as usize]).collect())
}

/// AVG_ALLOCATION: blocks of `q = total / n` in order, then the `r` leftovers appended
/// to the first `r` instances.
fn average<'a, T>(ordered: &[&'a T], total: u32) -> Vec<(&'a T, Vec<u32>)> {
    let n = ordered.len() as u32;
    let (q, r) = (total / n, total % n);
    ordered
        .iter()
        .enumerate()
        .map(|(k, inst)| {
            let k = k as u32;
            let mut items: Vec<u32> = (k * q..(k + 1) * q).collect();
            if k < r {
                items.push(q * n + k);
            }
            (*inst, items)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses "I0=[0,1,2] I1=[3,4,5] I2=[]" into item lists.
    fn expected(row: &str) -> Vec<Vec<u32>> {
        row.split_whitespace()
            .map(|part| {
                let list = part.split_once('=').expect("I=[..]").1;
                let inner = list.trim_start_matches('[').trim_end_matches(']');
                inner
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("item"))
                    .collect()
            })
            .collect()
    }

    fn run(strategy: Strategy, job: &str, n: usize, total: u32) -> Vec<Vec<u32>> {
        let instances: Vec<usize> = (0..n).collect();
        // Results come back in the rotated/reversed order; report them per input position.
        let mut by_position = vec![Vec::new(); n];
        for (inst, items) in strategy.assign(job, &instances, total, 0).expect("assign") {
            by_position[*inst] = items;
        }
        by_position
    }

    #[test]
    fn java_hashes() {
        for (name, h) in [
            ("myJob", 104343153),
            ("test_job", -1146456432),
            ("orderJob", 1234284943),
            ("javaSimpleJob", -694093655),
            ("job1", 3267604),
            ("job2", 3267605),
            ("1", 49),
            ("0", 48),
        ] {
            assert_eq!(java_hash(name), h, "{name}");
        }
    }

    #[test]
    fn avg_allocation_table() {
        for (n, t, row) in [
            (3, 9, "I0=[0,1,2] I1=[3,4,5] I2=[6,7,8]"),
            (3, 8, "I0=[0,1,6] I1=[2,3,7] I2=[4,5]"),
            (3, 10, "I0=[0,1,2,9] I1=[3,4,5] I2=[6,7,8]"),
            (3, 2, "I0=[0] I1=[1] I2=[]"),
            (3, 1, "I0=[0] I1=[] I2=[]"),
            (2, 5, "I0=[0,1,4] I1=[2,3]"),
            (4, 10, "I0=[0,1,8] I1=[2,3,9] I2=[4,5] I3=[6,7]"),
            (5, 3, "I0=[0] I1=[1] I2=[2] I3=[] I4=[]"),
            (1, 4, "I0=[0,1,2,3]"),
        ] {
            assert_eq!(
                run(Strategy::AvgAllocation, "anyJob", n, t),
                expected(row),
                "{n}x{t}"
            );
        }
        let none: [usize; 0] = [];
        assert!(
            Strategy::AvgAllocation
                .assign("j", &none, 3, 0)
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn name_dependent_tables() {
        use Strategy::{Odevity as O, RoundRobin as R};
        #[rustfmt::skip]
        let cases: &[(&str, Strategy, usize, u32, &str)] = &[
            // §3.1 myJob
            ("myJob", O, 3, 9, "I0=[0,1,2] I1=[3,4,5] I2=[6,7,8]"),
            ("myJob", R, 3, 9, "I0=[0,1,2] I1=[3,4,5] I2=[6,7,8]"),
            ("myJob", O, 3, 8, "I0=[0,1,6] I1=[2,3,7] I2=[4,5]"),
            ("myJob", R, 3, 8, "I0=[0,1,6] I1=[2,3,7] I2=[4,5]"),
            ("myJob", O, 2, 5, "I0=[0,1,4] I1=[2,3]"),
            ("myJob", R, 2, 5, "I0=[2,3] I1=[0,1,4]"),
            ("myJob", O, 4, 10, "I0=[0,1,8] I1=[2,3,9] I2=[4,5] I3=[6,7]"),
            ("myJob", R, 4, 10, "I0=[6,7] I1=[0,1,8] I2=[2,3,9] I3=[4,5]"),
            ("myJob", O, 5, 3, "I0=[0] I1=[1] I2=[2] I3=[] I4=[]"),
            ("myJob", R, 5, 3, "I0=[2] I1=[] I2=[] I3=[0] I4=[1]"),
            // §3.2 test_job
            ("test_job", O, 3, 9, "I0=[6,7,8] I1=[3,4,5] I2=[0,1,2]"),
            ("test_job", R, 3, 9, "I0=[0,1,2] I1=[3,4,5] I2=[6,7,8]"),
            ("test_job", O, 3, 8, "I0=[4,5] I1=[2,3,7] I2=[0,1,6]"),
            ("test_job", O, 3, 10, "I0=[6,7,8] I1=[3,4,5] I2=[0,1,2,9]"),
            ("test_job", O, 3, 2, "I0=[] I1=[1] I2=[0]"),
            ("test_job", R, 3, 2, "I0=[0] I1=[1] I2=[]"),
            ("test_job", O, 2, 5, "I0=[2,3] I1=[0,1,4]"),
            ("test_job", O, 4, 10, "I0=[6,7] I1=[4,5] I2=[2,3,9] I3=[0,1,8]"),
            ("test_job", O, 5, 3, "I0=[] I1=[] I2=[2] I3=[1] I4=[0]"),
            ("test_job", R, 5, 3, "I0=[] I1=[] I2=[0] I3=[1] I4=[2]"),
            // §3.3 orderJob
            ("orderJob", R, 3, 9, "I0=[6,7,8] I1=[0,1,2] I2=[3,4,5]"),
            ("orderJob", R, 3, 8, "I0=[4,5] I1=[0,1,6] I2=[2,3,7]"),
            ("orderJob", R, 3, 10, "I0=[6,7,8] I1=[0,1,2,9] I2=[3,4,5]"),
            ("orderJob", R, 3, 2, "I0=[] I1=[0] I2=[1]"),
            ("orderJob", R, 2, 5, "I0=[2,3] I1=[0,1,4]"),
            ("orderJob", R, 4, 10, "I0=[2,3,9] I1=[4,5] I2=[6,7] I3=[0,1,8]"),
            ("orderJob", R, 5, 3, "I0=[2] I1=[] I2=[] I3=[0] I4=[1]"),
            ("orderJob", O, 3, 8, "I0=[0,1,6] I1=[2,3,7] I2=[4,5]"),
            // §3.4 javaSimpleJob
            ("javaSimpleJob", O, 3, 9, "I0=[0,1,2] I1=[3,4,5] I2=[6,7,8]"),
            ("javaSimpleJob", R, 3, 9, "I0=[3,4,5] I1=[6,7,8] I2=[0,1,2]"),
            ("javaSimpleJob", R, 3, 8, "I0=[2,3,7] I1=[4,5] I2=[0,1,6]"),
            ("javaSimpleJob", R, 3, 2, "I0=[1] I1=[] I2=[0]"),
            ("javaSimpleJob", R, 4, 10, "I0=[2,3,9] I1=[4,5] I2=[6,7] I3=[0,1,8]"),
            ("javaSimpleJob", R, 5, 3, "I0=[0] I1=[1] I2=[2] I3=[] I4=[]"),
            // §5 upstream unit-test vectors, [host0, host1, host2] × 2 items
            ("1", O, 3, 2, "I0=[0] I1=[1] I2=[]"),
            ("0", O, 3, 2, "I0=[] I1=[1] I2=[0]"),
            ("1", R, 3, 2, "I0=[] I1=[0] I2=[1]"),
            ("2", R, 3, 2, "I0=[1] I1=[] I2=[0]"),
            ("3", R, 3, 2, "I0=[0] I1=[1] I2=[]"),
        ];
        for (job, strategy, n, t, row) in cases {
            assert_eq!(
                run(*strategy, job, *n, *t),
                expected(row),
                "{job} {strategy:?} {n}x{t}"
            );
        }
    }

    #[test]
    fn real_instance_ids_in_runtime_order() {
        use crate::instance::sort_descending;
        // sharding-examples §4.1
        let mut ids = vec![
            "192.168.1.10@-@2001",
            "192.168.1.9@-@3001",
            "192.168.1.11@-@1001",
        ];
        sort_descending(&mut ids);
        let owners = |s: Strategy, job: &str, t: u32| -> Vec<(String, Vec<u32>)> {
            let mut out: Vec<(String, Vec<u32>)> = s
                .assign(job, &ids, t, 0)
                .expect("assign")
                .into_iter()
                .map(|(id, items)| (id.split("@-@").next().expect("ip").to_owned(), items))
                .collect();
            out.sort();
            out
        };
        let sorted = |v: &[(&str, &[u32])]| -> Vec<(String, Vec<u32>)> {
            let mut v: Vec<(String, Vec<u32>)> = v
                .iter()
                .map(|(a, b)| ((*a).to_owned(), b.to_vec()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            owners(Strategy::AvgAllocation, "any", 8),
            sorted(&[
                ("192.168.1.9", &[0, 1, 6]),
                ("192.168.1.11", &[2, 3, 7]),
                ("192.168.1.10", &[4, 5])
            ])
        );
        assert_eq!(
            owners(Strategy::Odevity, "test_job", 9),
            sorted(&[
                ("192.168.1.9", &[6, 7, 8]),
                ("192.168.1.11", &[3, 4, 5]),
                ("192.168.1.10", &[0, 1, 2])
            ])
        );
        assert_eq!(
            owners(Strategy::RoundRobin, "orderJob", 2),
            sorted(&[
                ("192.168.1.9", &[]),
                ("192.168.1.11", &[0]),
                ("192.168.1.10", &[1])
            ])
        );
    }

    #[test]
    fn config_names() {
        assert_eq!(
            Strategy::from_config(None).expect("default"),
            Strategy::AvgAllocation
        );
        assert_eq!(
            Strategy::from_config(Some(" ")).expect("default"),
            Strategy::AvgAllocation
        );
        assert_eq!(
            Strategy::from_config(Some("ODEVITY")).expect("odevity"),
            Strategy::Odevity
        );
        assert!(matches!(
            Strategy::from_config(Some("RANDOM")),
            Err(Error::UnknownStrategy(_))
        ));
    }
}
