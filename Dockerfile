# tallyd, tally and tally-collector in a container image: a build stage with
# the toolchain, and a runtime stage with only the shared libraries the
# binaries link. The DaemonSet runs tallyd from it, the collector's
# StatefulSet tally-collector (packaging/kubernetes/).
# docs/container.md says how to run it; scripts/test-image builds and runs it.
#
# BASE: any Debian bookworm image (scripts/test-image passes a local one made
# with debootstrap). JOBS: parallel compile jobs (default: every CPU).
ARG BASE=debian:bookworm

FROM ${BASE} AS build
ARG JOBS=
# The toolchain and -dev packages of tallyd and tally only; scripts/bootstrap
# also installs the test and benchmark ones. clang and bpftool compile the BPF
# program and generate its skeleton against the committed bpf/kernel_types.h,
# so nothing on the build machine's kernel (no /sys/kernel/btf) is read.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake pkg-config clang bpftool ccache \
      libbpf-dev libelf-dev zlib1g-dev linux-libc-dev \
      libsqlite3-dev libzstd-dev libdeflate-dev libcurl4-openssl-dev libssl-dev libseccomp-dev libboost-dev \
      nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libfmt-dev libsimdjson-dev \
      libprotobuf-dev protobuf-compiler libsnappy-dev libre2-dev libncurses-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
COPY . /src
# -O2 as in the RelWithDebInfo build the tests run, minus the debug info the
# runtime image would strip anyway. Compiles go through ccache on a cache
# mount: it keys on file contents, so a rebuild after a source change is
# fast and never reuses a stale object (a cached build tree would trust
# mtimes, which COPY does not make meaningful). The collector's page embeds
# uPlot from userspace/collector/web/node_modules, which scripts/bootstrap
# installs before an image is built from this tree; without it the
# collector is built without its page, and its configure step says so.
RUN --mount=type=cache,target=/var/cache/ccache,sharing=locked \
    export CCACHE_DIR=/var/cache/ccache \
 && cmake -S /src -B /tmp/build -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DCMAKE_INSTALL_PREFIX=/usr -DTALLY_TESTS=OFF -DTALLY_BENCHMARKS=OFF \
 && cmake --build /tmp/build -j"${JOBS:-$(nproc)}" --target tallyd tally tally-collector \
 && DESTDIR=/staging cmake --install /tmp/build --component agent --strip \
 && DESTDIR=/staging cmake --install /tmp/build --component collector --strip

FROM ${BASE}
LABEL org.opencontainers.image.title="tally" \
      org.opencontainers.image.description="tallyd: per-process CPU accounting with eBPF, shipped without loss; tally-collector, its server"
# What `ldd tallyd tally` needs beyond the base system (libstdc++6 and libc6
# are in every Debian image); ca-certificates for https endpoints. The .debs
# and package lists are removed here, not left to the base image's apt
# configuration: they would double the layer.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libbpf1 libelf1 zlib1g libzstd1 libdeflate0 libsqlite3-0 libcurl4 libseccomp2 libfmt9 libtomlplusplus3 \
      libsimdjson14 libssl3 libprotobuf32 libsnappy1v5 libre2-9 libncursesw6 libtinfo6 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
           /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
 && mkdir -m 0700 -p /var/lib/tally
COPY --from=build /staging/usr/sbin/tallyd /usr/sbin/tallyd
COPY --from=build /staging/usr/bin/tally /usr/bin/tally
COPY --from=build /staging/etc/tally/tally.toml /etc/tally/tally.toml
COPY --from=build /staging/usr/bin/tally-collector /usr/bin/tally-collector
# The outbox (/var/lib/tally/outbox.db, see tally.toml): samples committed but
# not yet shipped. It must outlive the container, or replacing the container
# (an upgrade) leaves them behind in an anonymous volume.
VOLUME /var/lib/tally
# tallyd reads /etc/tally/tally.toml by default; arguments override its keys.
ENTRYPOINT ["/usr/sbin/tallyd"]
