# PostgreSQL for deploy/kubernetes/base/postgres.yaml: Debian's own postgresql package on our base image
# (no registry pulls; apt reads Debian's archive, or the mirror in the base image's sources).
# Reads POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD / POSTGRES_HOST_AUTH_METHOD and PGDATA as the
# usual postgres images do, so the StatefulSet works with either.
FROM trackside/python3-base:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 util-linux \
 && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data/pgdata
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
