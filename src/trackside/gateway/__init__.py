"""The gateway ("pub"): routes `/pub/job/{name}/{version}/...` to jobs, checks calls, counts metrics.

`server.GatewayServer` is the proxy, `resolver` decides where a call goes and whether it may,
`upstream` holds the pooled connections to jobs, `metrics` the Prometheus counters.
"""
