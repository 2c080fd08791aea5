"""Intentional differences between berthd and dockerd 20.10, each with its reason.

Only what berthd does on purpose belongs here: its own identity, newer Engine API behaviour that
dockerd applies at every API version (so at 1.41 too: see the API's version history), and
answers that depend on the host or on the registry client. Everything else is a berthd bug,
and a test that fails (or is marked xfail with the bug) says so.
"""

from differ import Allowed

NEWER = "newer dockerd does this at every API version"
GO_PARSE = r"^(strconv\.|invalid character|json: cannot unmarshal|unexpected EOF|EOF$)"

ALLOWED: list[Allowed] = [
    # Berth's identity.
    Allowed("*", "header Api-Version", "berthd serves API 1.24 to 1.47; dockerd 20.10 stops at 1.41"),
    Allowed("*", "header Server", "Berth/<version>, not Docker/<version>"),
    Allowed("GET /version", "$.Components*", "berthd has no containerd, runc or docker-init components"),
    Allowed("GET /version", "$.GitCommit", "berthd's own build"),
    Allowed("GET /version", "$.Platform.Name", "Berth's platform name"),
    Allowed("GET /version", "message", "berthd's maximum API version is 1.47", dockerd_says="is too new"),
    Allowed("GET /version", "*", "berthd serves API 1.24 and up, as dockerd 25 to 27; dockerd 20.10 went down to 1.12",
            berthd="*too old. Minimum supported API version is 1.24*"),
    Allowed("GET /version", "status", "berthd serves API 1.24 and up, as dockerd 25 to 27; dockerd 20.10 went down to 1.12",
            berthd="400", dockerd="200"),
    Allowed("*", "header Swarm", "API 1.42 added the Swarm header to /_ping, unversioned"),
    Allowed("*", "header Builder-Version", "API 1.42 added Builder-Version to /_ping, unversioned (1: berthd has no BuildKit)"),
    Allowed("GET /info", "$.Runtimes.*", "berthd's runtime is berth-runtime"),
    Allowed("GET /info", "$.Plugins.Log*", "berthd has the log drivers it has (json-file, local; no gelf, syslog...)"),
    Allowed("GET /info", "$.Plugins.Network*", "berthd has the network drivers it has (no overlay, ipvlan)"),
    Allowed("GET /info", "$.DriverStatus*", "storage driver details are Berth's own"),
    Allowed("GET /info", "$.RegistryConfig.InsecureRegistryCIDRs", "berthd also trusts ::1/128, as newer dockerd"),
    Allowed("GET /info", "$.CDISpecDirs", "API 1.44 added CDISpecDirs, unversioned"),

    # Routing.
    Allowed("* (no route)", "status", "berthd answers a known path with the wrong method 405 (pinned by tests/daemon/test_system.py); "
            "dockerd's router maps that to 404 page not found (api/server/server.go)", berthd="405", dockerd="404"),
    Allowed("* (no route)", "message", "same: 405 method not allowed", berthd='"method not allowed"', dockerd='"page not found"'),

    # Errors: dockerd 20.10 leaks Go parser errors, mostly as 500; berthd says what is wrong, with 400.
    Allowed("*", "status", "dockerd 20.10 answers a malformed parameter or body with Go's parser error as 500; berthd 400, "
            "as newer dockerd (httputils.ReadJSON: 400 invalid JSON)", berthd="400", dockerd="500", dockerd_says=GO_PARSE),
    Allowed("*", "message", "dockerd 20.10 answers a malformed parameter or body with Go's parser error; berthd names the "
            "parameter or says invalid JSON, as newer dockerd", dockerd_says=GO_PARSE),
    Allowed("*", "status", "dockerd 20.10 answers some invalid parameters with 500 where newer dockerd says 400 "
            "(errdefs.InvalidParameter); same message", berthd="400", dockerd="500", same_message=True),
    Allowed("*", "*", "berthd reads an absent body as {} (newer dockerd's httputils.ReadJSON does too)",
            dockerd_says="^got EOF while reading request body$"),
    Allowed("* /containers/{id}/attach", "message", "berthd refuses before the upgrade with Docker's JSON error body; dockerd "
            "writes the text on the raw stream (both send the status)"),

    # Newer dockerd's wording or checks (unversioned), which berthd follows.
    Allowed("*", "message", NEWER + ": 'invalid restart policy: ...' (api/types/container/hostconfig.go)",
            dockerd_says=r"^(invalid restart policy|maximum retry count cannot be used)"),
    Allowed("DELETE /containers/{id}", "message", NEWER + ": 'cannot remove container \"/x\": container is running: ...'",
            dockerd_says="^you cannot remove a running container"),
    Allowed("POST /containers/{id}/kill", "message", NEWER + ": 'container <id> is not running' without the 'Cannot kill "
            "container' prefix (daemon/kill.go)", dockerd_says="^cannot kill container: "),
    Allowed("POST /containers/{id}/wait", "*", "API 1.42: an invalid condition is a 400 on API 1.30 and up",
            berthd='*invalid condition*'),
    Allowed("POST /containers/{id}/wait", "status", "API 1.42: an invalid condition is a 400 on API 1.30 and up", berthd="400", dockerd="200"),
    Allowed("POST /containers/{id}/unpause", "status", "berthd answers 409 for a container that is not paused (pinned by "
            "tests/daemon/test_processes.py); every dockerd sends 500", berthd="409", dockerd="500"),
    Allowed("POST /containers/create", "*", "API 1.44: create checks what start used to (here: the network exists), unversioned",
            berthd="*network no-such-network not found*"),
    Allowed("POST /containers/create", "status", "API 1.44: create checks what start used to (here: the network exists), unversioned",
            berthd="404", dockerd="201"),
    Allowed("POST /networks/create", "*", "API 1.44: a duplicate network name fails systematically, unversioned",
            berthd="*already exists*"),
    Allowed("POST /networks/create", "status", "API 1.44: a duplicate network name fails systematically, unversioned",
            berthd="409", dockerd="201"),
    Allowed("POST /networks/create", "*", "API 1.44: invalid IPAM config is a 400, with the checks' own wording, unversioned",
            dockerd_says=r"^(invalid subnet|failed to allocate gateway)"),
    Allowed("POST /networks/create", "*", "berthd refuses ingress networks as a feature it lacks (swarm mode), with 501",
            dockerd_says="^ingress network can only be global scope"),
    Allowed("DELETE /networks/{id}", "message", "berthd names the endpoints, as newer dockerd (libnetwork ActiveEndpointsError)",
            dockerd_says="has active endpoints$"),
    Allowed("* /images/*", "message", "dockerd 20.10 wraps its not-found error twice ('no such image: x: No such image: x:latest')",
            dockerd_says=r"(?i)^no such image: [^:]+(:[^:]+)?: (no such image|invalid reference format)"),
    Allowed("*", "message", "berthd's reference errors say which part is wrong", dockerd_says=r"^invalid (reference|tag) format",
            berthd='"invalid reference format*'),
    Allowed("*", "status", "dockerd 20.10 answers an invalid reference with 500; berthd 400, as newer dockerd "
            "(errdefs.InvalidParameter)", berthd="400", dockerd="500", dockerd_says=r"^invalid (reference|tag) format"),
    Allowed("POST /images/create", "*", "no fromSrc nor fromImage: dockerd 20.10 tries to import from the URL \"\"",
            dockerd_says="no Host in request URL"),
    Allowed("POST /swarm/init", "*", "berthd refuses swarm init and join whatever the body: it cannot make the node a swarm"),
    Allowed("POST /swarm/join", "*", "berthd refuses swarm init and join whatever the body: it cannot make the node a swarm"),

    # Fields newer API versions added and newer dockerd sends at every version.
    Allowed("*", "*.DNSNames", "API 1.44 added DNSNames to endpoint settings, sent at every version"),
    Allowed("* /networks*", "*.EnableIPv4", "API 1.48 added EnableIPv4 to networks; newer dockerd sends it at every version"),
    Allowed("* /networks*", "*.IPAM.Config[*].Gateway", "berthd reports the gateway it picked, as newer dockerd"),
    Allowed("GET /system/df", "$.BuilderSize", "API 1.42 removed BuilderSize (unused since 1.40)"),

    # The host, the network, the registry.
    Allowed("*", "*", "connection errors to an unreachable registry are worded by each HTTP client",
            dockerd_says=r"(dial tcp|lookup .* on|connect: connection refused|no such host)"),
    Allowed("* /images/{name:.*}/push", "$.error*", "connection errors to an unreachable registry are worded by each HTTP client"),
    Allowed("GET /containers/{id}/stats", "$.blkio_stats.*", "lists dockerd fills from cgroup v1 and leaves null on v2; berthd "
            "sends null", berthd="null", dockerd="[]"),
    Allowed("* /containers/{id}/logs", "content-type", "dockerd 20.10 sends no Content-Type for logs; newer dockerd sends "
            "raw-stream below API 1.42, as berthd", berthd="application/vnd.docker.raw-stream", dockerd="none"),
]
