# The Trackside platform image: our own base image (debootstrapped Debian with python3), no registry pulls.
# Built by scripts/build-platform-image, which puts the wheels beside it: deps/ (every dependency, with
# requirements.txt pinning them; the same wheels give the same layer, so a rebuild after a code change
# reuses it) and trackside/ (Trackside's own wheel).
FROM trackside/python3-base:bookworm
# The lifecycle builds jobs' images with the docker client (on the engine DOCKER_HOST names) and
# reads git sources: Debian's packages (apt reads Debian's archive; the build script gives it the
# host's network). Of docker.io only its client (it needs libc alone): the engine, containerd and
# runc it depends on would add 500 MB that never run here.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git ca-certificates \
 && cd /tmp && apt-get download docker.io && dpkg-deb -x docker.io_*.deb /tmp/docker.io \
 && install -m 0755 /tmp/docker.io/usr/bin/docker /usr/local/bin/docker \
 && rm -rf /tmp/docker.io* /var/lib/apt/lists/*
COPY deps /tmp/deps
RUN python3 -m venv /opt/trackside \
 && /opt/trackside/bin/pip install --no-cache-dir --no-index --find-links /tmp/deps -r /tmp/deps/requirements.txt \
 && rm -rf /tmp/deps \
 && mkdir -p /var/lib/trackside && chown 10001:10001 /var/lib/trackside
COPY trackside /tmp/trackside
RUN /opt/trackside/bin/pip install --no-cache-dir --no-index --no-deps /tmp/trackside/*.whl && rm -rf /tmp/trackside
ENV PATH=/opt/trackside/bin:$PATH TRACKSIDE_DATA_DIR=/var/lib/trackside TRACKSIDE_HOST=0.0.0.0
USER 10001:10001
ENTRYPOINT ["trackside"]
