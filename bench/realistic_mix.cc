#include "realistic_mix.h"

#include <ctime>

#include <dirent.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "accounting/procfs.h"
#include "samples/json_line.h"

namespace tally::bench {

using samples::ProcessSample;

RealisticMix::RealisticMix(MixOptions options) : options_(options), rng_(options.seed) {
  constexpr std::uint64_t kS = 1'000'000'000;
  const auto now_s = static_cast<std::uint64_t>(std::time(nullptr));
  ts_ns_ = (now_s - 2 * 86400) * kS + 486'674'459;
  boot_epoch_ns_ = ts_ns_ - 10 * 86400 * kS;
  if (options_.include_machine) {
    // This machine's processes, named exactly as tallyd names them.
    if (DIR* dir = opendir("/proc")) {
      std::vector<std::uint32_t> pids;
      while (dirent* ent = readdir(dir)) {
        std::uint32_t pid = 0;
        auto [ptr, ec] = std::from_chars(ent->d_name, ent->d_name + strlen(ent->d_name), pid);
        if (ec == std::errc() && *ptr == '\0') pids.push_back(pid);
      }
      closedir(dir);
      std::sort(pids.begin(), pids.end());
      for (std::uint32_t pid : pids) {
        if (procs_.size() >= options_.processes) break;
        auto st = accounting::procfs::read_stat(pid);
        if (!st) continue;
        const bool kthread = accounting::procfs::read_cmdline(pid).empty();
        add(accounting::procfs::read_comm(pid),
            accounting::procfs::cmdline_for_display(accounting::procfs::read_cmdline(pid)),
            accounting::procfs::read_cgroup(pid), kthread ? 0.3 : 0.8, kthread ? 13 : 16);
        procs_.back().s.pid = pid;
        procs_.back().s.start_time_ns = boot_epoch_ns_ +
                                        st->start_ticks * accounting::procfs::ns_per_tick() +
                                        rng_() % 10'000'000;
      }
      real_ = procs_.size();
      next_pid_ = pids.empty() ? 1000 : pids.back() + 1;
    }
  }

  // Synthetic population, in the proportions of a busy application server.
  for (int i = 0; i < 64; ++i) add(fmt::format("kworker/{}:{}", i % 8, i / 8), "", "/", 0.4, 13);
  const char* services[] = {
      "sshd",          "cron",       "rsyslogd", "dbus-daemon", "systemd-journal", "systemd-logind",
      "systemd-udevd", "containerd", "dockerd",  "kubelet",     "chronyd",         "irqbalance",
      "polkitd",       "snapd",      "atd",      "multipathd"};
  for (const char* s : services) {
    add(s, fmt::format("/usr/sbin/{} --foreground", s), fmt::format("/system.slice/{}.service", s),
        0.7, 15);
  }
  const std::string nginx = "/system.slice/nginx.service";
  add("nginx", "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;", nginx, 0.5,
      12);
  for (int i = 0; i < 16; ++i) add("nginx", "nginx: worker process", nginx, 0.98, 19);
  for (int i = 0; i < 48; ++i) {
    add("php-fpm8.2", "php-fpm: pool www", "/system.slice/php8.2-fpm.service", 0.95, 20);
  }
  const std::string pg = "/system.slice/system-postgresql.slice/postgresql@15-main.service";
  add("postgres",
      "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c "
      "config_file=/etc/postgresql/15/main/postgresql.conf",
      pg, 0.9, 16);
  for (const char* bg : {"checkpointer", "background writer", "walwriter", "autovacuum launcher",
                         "logical replication launcher"}) {
    add("postgres", fmt::format("postgres: 15/main: {}", bg), pg, 0.9, 14);
  }
  for (int i = 0; i < 64; ++i) {
    add("postgres",
        fmt::format("postgres: 15/main: app appdb 10.0.{}.{}({}) idle", rng_() % 10,
                    1 + rng_() % 250, 30000 + rng_() % 30000),
        pg, 0.9, 18);
  }
  add("java",
      "/usr/lib/jvm/java-17-openjdk-amd64/bin/java -Xms4g -Xmx4g -XX:+UseG1GC "
      "-Dlog4j.configurationFile=/etc/app/log4j2.xml -jar /opt/app/app-2.14.3.jar "
      "--spring.profiles.active=prod",
      "/system.slice/app.service", 1.0, 23);
  for (int i = 0; i < 32; ++i) {
    add("gunicorn",
        "/opt/venv/bin/python3 /opt/venv/bin/gunicorn -w 32 -b 127.0.0.1:8000 api.wsgi:application",
        "/system.slice/api.service", 0.95, 19);
  }
  // Containers: a pod has a few containers, a container a few processes.
  const char* images[] = {"node /app/server.js",
                          "python3 -m worker --queue default",
                          "/usr/local/bin/envoy -c /etc/envoy/envoy.yaml",
                          "/pause",
                          "redis-server *:6379",
                          "/coredns -conf /etc/coredns/Corefile",
                          "/bin/sh -c sleep infinity",
                          "/usr/bin/fluent-bit -c /fluent-bit/etc/fluent-bit.conf"};
  while (procs_.size() < options_.processes) {
    const std::string pod = hex(8) + "_" + hex(4) + "_" + hex(4) + "_" + hex(4) + "_" + hex(12);
    for (int c = 0; c < 3 && procs_.size() < options_.processes; ++c) {
      const std::string cmd = images[rng_() % std::size(images)];
      std::string comm = cmd.substr(0, cmd.find(' '));
      comm = comm.substr(comm.rfind('/') + 1).substr(0, 15);
      const std::string cgroup = fmt::format(
          "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/"
          "cri-containerd-{}.scope",
          pod, hex(64));
      const int n = 1 + static_cast<int>(rng_() % 4);
      for (int p = 0; p < n && procs_.size() < options_.processes; ++p)
        add(comm, cmd, cgroup, 0.85, 17);
    }
  }
}

std::string RealisticMix::hex(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s.push_back("0123456789abcdef"[rng_() % 16]);
  return s;
}

void RealisticMix::add(const std::string& comm, const std::string& cmdline,
                       const std::string& cgroup, double active_p, double cpu_mu) {
  Proc p;
  p.s.host = "web-1";
  p.s.pid = next_pid_;
  next_pid_ += 1 + static_cast<std::uint32_t>(rng_() % 40);
  // Started some time in the last ten days, at ns resolution (BPF's start_boottime).
  p.s.start_time_ns = boot_epoch_ns_ + rng_() % 864'000'000'000'000ULL;
  p.s.comm = comm.substr(0, 15);
  p.s.cmdline = cmdline;
  p.s.cgroup = cgroup;
  p.s.rss_bytes = (256 + rng_() % 200'000) * 4096;
  p.active_p = active_p;
  p.cpu_mu = cpu_mu;
  procs_.push_back(std::move(p));
}

std::vector<std::string> RealisticMix::next_interval() {
  const samples::IntervalSamples interval = next_interval_samples();
  return samples::json_lines(interval);
}

samples::IntervalSamples RealisticMix::next_interval_samples() {
  std::uniform_real_distribution<double> u(0, 1);
  ts_ns_ += options_.interval_ns;
  const std::uint64_t interval_ns = options_.interval_ns + rng_() % 2'000'000;
  std::vector<ProcessSample> out;
  std::uint64_t busy = 0;
  for (Proc& p : procs_) {
    if (!options_.all_active && u(rng_) >= p.active_p) continue;
    std::lognormal_distribution<double> cpu(p.cpu_mu, 1.5);
    ProcessSample s = p.s;
    s.ts_ns = ts_ns_;
    s.interval_ns = interval_ns;
    s.cpu_ns = std::min<std::uint64_t>(static_cast<std::uint64_t>(cpu(rng_)) + 1, 2 * interval_ns);
    s.cpu_pct = samples::percent(s.cpu_ns, interval_ns);
    // RSS drifts by whole pages.
    const std::int64_t drift = static_cast<std::int64_t>(rng_() % 65) - 32;
    p.s.rss_bytes = static_cast<std::uint64_t>(
        std::max<std::int64_t>(64, static_cast<std::int64_t>(p.s.rss_bytes / 4096) + drift) * 4096);
    s.rss_bytes = p.s.rss_bytes;
    busy += s.cpu_ns;
    out.push_back(std::move(s));
  }
  // Short-lived processes: started and ended within the interval.
  const char* jobs[] = {"/bin/sh -c /usr/local/bin/backup.sh --incremental",
                        "/usr/bin/python3 /usr/local/bin/healthcheck.py --timeout 5",
                        "/usr/sbin/logrotate /etc/logrotate.conf", "git fetch --quiet origin"};
  for (int i = 0; i < 8; ++i) {
    ProcessSample s;
    s.ts_ns = ts_ns_;
    s.interval_ns = interval_ns;
    s.host = "web-1";
    s.pid = next_pid_;
    next_pid_ += 1 + static_cast<std::uint32_t>(rng_() % 20);
    s.start_time_ns = ts_ns_ - rng_() % interval_ns;
    s.cmdline = jobs[rng_() % std::size(jobs)];
    s.comm = s.cmdline.substr(0, s.cmdline.find(' '));
    s.comm = s.comm.substr(s.comm.rfind('/') + 1).substr(0, 15);
    s.cgroup = "/system.slice/cron.service";
    s.cpu_ns = 1'000'000 + rng_() % 50'000'000;
    s.cpu_pct = samples::percent(s.cpu_ns, interval_ns);
    s.exited = true;
    busy += s.cpu_ns;
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(),
            [](const ProcessSample& a, const ProcessSample& b) { return a.pid < b.pid; });
  samples::HostSample h;
  h.ts_ns = ts_ns_;
  h.interval_ns = interval_ns;
  h.host = "web-1";
  h.ncpu = 16;
  h.busy_ns = busy;
  h.cpu_pct = samples::percent(busy, interval_ns * 16);
  h.processes = static_cast<std::uint32_t>(out.size());
  return samples::IntervalSamples{std::move(out), {}, std::move(h)};
}

}  // namespace tally::bench
