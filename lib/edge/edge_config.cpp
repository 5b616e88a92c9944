// The `edge:` configuration block (see edge_config.h).
#include "edge/edge_config.h"

#include <chrono>

#include "config/diagnostic.h"

namespace omnibus::edge {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

config::Spec edge_spec() {
    const EdgeSettings d;
    config::Spec s("edge",
                   "The public HTTP edge: channel webhooks at /webhooks/<channel name>, served by one asynchronous "
                   "HTTP/1.1 server (TLS when a certificate is set).");
    s.address("listen").def("0.0.0.0:8080").describe("Address the public edge binds.").example("0.0.0.0:443");
    s.integer("threads").def(0).range(0, 256).describe("Worker threads; 0 means one per core.");
    s.string("cert_file")
        .describe("PEM certificate chain. TLS is on when `cert_file` and `key_file` are both set.")
        .example("/etc/omnibus/tls/fullchain.pem");
    s.string("key_file").describe("PEM private key of `cert_file`.").example("/etc/omnibus/tls/privkey.pem");
    s.integer("backlog").def(d.backlog).range(1, 65535).describe(
        "Listen backlog: connections the kernel queues before they are accepted (capped by "
        "net.core.somaxconn).");
    s.size("max_body").def("4MiB").range("1KiB", "64MiB").describe("Largest request body; larger is answered 413. Meta sends webhooks of up to 3 MB.");
    s.size("max_header")
        .def("16KiB")
        .range("1KiB", "1MiB")
        .describe("Largest request line plus headers; larger is answered 431.");
    s.duration("header_timeout")
        .def("10s")
        .range(milliseconds(100), minutes(5))
        .describe(
            "Time a client has, from the first byte of a request (or from connecting), to send all its "
            "headers; slower connections are closed (slowloris).");
    s.duration("body_timeout")
        .def("30s")
        .range(milliseconds(100), minutes(10))
        .describe("Time a client has, after the headers, to send the whole body.");
    s.duration("idle_timeout")
        .def("60s")
        .range(milliseconds(100), minutes(60))
        .describe("How long a kept-alive connection may wait for its next request.");
    s.duration("request_timeout")
        .def("10s")
        .range(milliseconds(100), minutes(5))
        .describe(
            "How long a channel may take to answer a request (e.g. until Kafka acknowledged the event) "
            "before the edge answers 503 itself, so the sender retries.");
    s.duration("write_timeout")
        .def("30s")
        .range(milliseconds(100), minutes(10))
        .describe("Time a client has to take one response.");
    s.duration("shutdown_timeout")
        .def("5s")
        .range(milliseconds(0), minutes(5))
        .describe(
            "On stop, how long requests in flight may take to finish before they are answered 503 and "
            "every connection is closed.");
    s.integer("max_connections")
        .def(static_cast<long long>(d.max_connections))
        .range(1, 10'000'000)
        .describe("Open connections in total; beyond, new connections are closed at once.");
    s.integer("max_connections_per_ip")
        .def(static_cast<long long>(d.max_connections_per_ip))
        .range(0, 10'000'000)
        .describe(
            "Open connections from one client address; beyond, new ones are closed at once. 0: no limit "
            "(behind a proxy every client has the proxy's address).");
    s.check([](const config::Section& sec, config::Reporter& r) {
        const bool cert = sec.has("cert_file") && !sec.string("cert_file").empty();
        const bool key = sec.has("key_file") && !sec.string("key_file").empty();
        if (cert && !key) r.error(sec.position("cert_file"), "edge.cert_file is set but edge.key_file is not");
        if (key && !cert) r.error(sec.position("key_file"), "edge.key_file is set but edge.cert_file is not");
    });
    return s;
}

EdgeSettings edge_settings(const config::Section& sec) {
    EdgeSettings e;
    e.host = sec.address("listen").host;
    if (e.host.empty()) e.host = "0.0.0.0";
    e.port = sec.address("listen").port;
    e.threads = static_cast<unsigned>(sec.integer("threads"));
    if (sec.has("cert_file")) e.cert_file = sec.string("cert_file");
    if (sec.has("key_file")) e.key_file = sec.string("key_file");
    e.backlog = static_cast<int>(sec.integer("backlog"));
    e.max_body_bytes = static_cast<size_t>(sec.size("max_body"));
    e.max_header_bytes = static_cast<size_t>(sec.size("max_header"));
    e.header_timeout = sec.duration("header_timeout");
    e.body_timeout = sec.duration("body_timeout");
    e.idle_timeout = sec.duration("idle_timeout");
    e.request_timeout = sec.duration("request_timeout");
    e.write_timeout = sec.duration("write_timeout");
    e.shutdown_timeout = sec.duration("shutdown_timeout");
    e.max_connections = static_cast<size_t>(sec.integer("max_connections"));
    e.max_connections_per_ip = static_cast<size_t>(sec.integer("max_connections_per_ip"));
    return e;
}

}  // namespace omnibus::edge
