//! Where a drain's time goes, measured from outside the worker: Redis's own accounting
//! (`INFO commandstats`: calls and server-side µs of `XREAD` and of script calls, which are the commit
//! script, lease renewals and the merger's publish; `INFO cpu`: the server's CPU seconds) and this
//! process's CPU time (`/proc/self/stat`).

use std::collections::HashMap;
use std::time::Duration;

use scoreboard_shared::redis::RedisConn;

/// `/proc` reports CPU time in USER_HZ ticks, 100 per second on Linux.
const TICKS_PER_SEC: u64 = 100;

/// Counters of the Redis server, or their difference over a drain.
#[derive(Debug, Clone, Default)]
pub struct RedisStats {
    pub xread_calls: u64,
    pub xread_usec: u64,
    pub script_calls: u64,
    pub script_usec: u64,
    pub cpu_secs: f64,
}

impl RedisStats {
    /// Reads the server's counters now.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn read(redis: &mut RedisConn) -> redis::RedisResult<Self> {
        let commands: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(redis)
            .await?;
        let cpu: String = redis::cmd("INFO").arg("cpu").query_async(redis).await?;
        let stats = command_stats(&commands);
        let get = |name: &str| stats.get(name).copied().unwrap_or((0, 0));
        let (xread_calls, xread_usec) = get("xread");
        let (evalsha_calls, evalsha_usec) = get("evalsha");
        let (eval_calls, eval_usec) = get("eval");
        let cpu_secs = cpu
            .lines()
            .filter_map(|line| {
                let (key, value) = line.trim().split_once(':')?;
                matches!(key, "used_cpu_sys" | "used_cpu_user")
                    .then(|| value.parse::<f64>().ok())
                    .flatten()
            })
            .sum();
        Ok(Self {
            xread_calls,
            xread_usec,
            script_calls: evalsha_calls + eval_calls,
            script_usec: evalsha_usec + eval_usec,
            cpu_secs,
        })
    }

    /// The counters' growth since `before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            xread_calls: self.xread_calls.saturating_sub(before.xread_calls),
            xread_usec: self.xread_usec.saturating_sub(before.xread_usec),
            script_calls: self.script_calls.saturating_sub(before.script_calls),
            script_usec: self.script_usec.saturating_sub(before.script_usec),
            cpu_secs: (self.cpu_secs - before.cpu_secs).max(0.0),
        }
    }
}

/// `cmdstat_<name>:calls=N,usec=M,...` lines as `name -> (calls, usec)`.
fn command_stats(info: &str) -> HashMap<String, (u64, u64)> {
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            Some((name.to_lowercase(), (field("calls"), field("usec"))))
        })
        .collect()
}

/// This process's CPU time since [`CpuClock::start`].
#[derive(Debug)]
pub struct CpuClock {
    at_start: Option<Duration>,
}

impl CpuClock {
    pub fn start() -> Self {
        Self {
            at_start: process_cpu(),
        }
    }

    /// `None` where `/proc/self/stat` is not readable.
    pub fn elapsed(&self) -> Option<Duration> {
        Some(process_cpu()?.saturating_sub(self.at_start?))
    }
}

/// User + system CPU time of this process.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1_000 / TICKS_PER_SEC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_stats_reads_calls_and_usec() {
        let info = "# Commandstats\r\ncmdstat_xread:calls=12,usec=340,usec_per_call=28.33,rejected_calls=0\r\n\
                    cmdstat_evalsha:calls=3,usec=90,usec_per_call=30.00\r\n";
        let stats = command_stats(info);
        assert_eq!(stats["xread"], (12, 340));
        assert_eq!(stats["evalsha"], (3, 90));
    }
}
