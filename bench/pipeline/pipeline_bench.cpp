// bench_pipeline: messages per second through the pipeline (resolve + history + context,
// classified and routed to the two outboxes), all in one process on the embedded cluster, beside the raw
// consume→produce rate of the same cluster (kcat piping the same records to another topic)
// as the ceiling.
//
// Two phases over one set of customers: "first contact" (every message is a new customer:
// an observe request on the identity log, a round trip through Kafka each) and "returning"
// (the customers are known: the store answers, then history and context).
//
// The embedded brokers run in a child process, as Kafka runs on other machines in
// production, and so does the producer of the input (the connectors' side), which writes a
// phase's records while the stages consume them: "msg/CPU-s" is messages per CPU-second of
// the pipeline's process (the stages, their librdkafka clients and the producer), the "per
// core" of the target, from the first input record produced to the last one routed. The
// brokers' CPU is printed beside it, and the sum, for the machine as a whole.
//
// The texts are the classification corpus's (ten languages), each with an order number.
//
// Usage: bench_pipeline [customers=2000] [messages_per_customer=10]
//   env LINGER_US: the identity service's producer's linger in µs (default the daemon's kafka.linger_ms)
//       PIPELINE_LINGER_US: the stages' producer's (default the daemon's pipeline.producer_linger_ms)
//       KAFKA_CLIENT="name=value;...": librdkafka properties for every client, as kafka.client
//       TRANSACTIONS=on: the conversation stage commits in Kafka transactions (pipeline.transactions:
//       on, every pipeline.transaction_interval), as omnibusd does on a real cluster; the mock
//       answers the transactional requests, so the figure shows what draining and committing
//       costs the stage (the broker's side of a real transaction is not in it)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "envelope/envelope.h"
#include "kafka/client_config.h"
#include "kafka/client_handle.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/classify/classifier.h"
#include "pipeline/history/conversation_stage.h"
#include "pipeline/identity/identity_service.h"
#include "pipeline/identity/resolve_stage.h"
#include "pipeline/pipeline_settings.h"

using namespace omnibus;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kPartitions = 8;

// A /proc/<pid>[/task/<tid>]/stat file: the name in it and utime + stime in seconds
// (nullopt when it cannot be read).
struct StatCpu {
    std::string name;
    double seconds = 0;
};
std::optional<StatCpu> read_stat(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string stat;
    std::getline(in, stat);
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) return std::nullopt;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::stoull(f);
        if (i == 15) stime = std::stoull(f);
    }
    return StatCpu{stat.substr(open + 1, close - open - 1),
                   static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK))};
}

// utime + stime of another process, in seconds (0 when it cannot be read).
double process_cpu_seconds(pid_t pid) {
    auto s = read_stat("/proc/" + std::to_string(pid) + "/stat");
    return s ? s->seconds : 0;
}

// The embedded cluster in a child process, forked before this process starts a thread. The
// child creates the topics, writes the bootstrap servers to a pipe and lives until its stdin
// pipe closes (this process ended, however).
struct BrokerProcess {
    pid_t pid = -1;
    int keepalive = -1;
    std::string bootstrap;

    BrokerProcess(const std::vector<kafka::TopicSpec>& topics) {
        int up[2], hold[2];
        if (::pipe(up) != 0 || ::pipe(hold) != 0) throw std::runtime_error("pipe failed");
        pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            ::close(up[0]);
            ::close(hold[1]);
            {
                kafka::EmbeddedCluster cluster(1);
                for (const auto& t : topics) cluster.create_topic(t.name, t.partitions);
                const std::string b = cluster.bootstrap_servers() + "\n";
                if (::write(up[1], b.data(), b.size()) != static_cast<ssize_t>(b.size())) ::_exit(1);
                ::close(up[1]);
                char c;
                while (::read(hold[0], &c, 1) > 0) {
                }
            }
            ::_exit(0);
        }
        ::close(up[1]);
        ::close(hold[0]);
        keepalive = hold[1];
        char buf[256];
        for (ssize_t n; (n = ::read(up[0], buf, sizeof buf)) > 0;) bootstrap.append(buf, static_cast<std::size_t>(n));
        ::close(up[0]);
        while (!bootstrap.empty() && bootstrap.back() == '\n') bootstrap.pop_back();
        if (bootstrap.empty()) throw std::runtime_error("the broker process did not start");
    }
    ~BrokerProcess() {
        ::close(keepalive);
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
};

// CPU of the children this process has waited for (the kcat pipeline run by std::system).
double children_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of this process's threads, summed by thread name (the stages' consumer threads
// are "c:<stage>", the producers' report threads "kafka-reports", librdkafka's "rdk:...").
std::map<std::string, double> thread_cpu_seconds() {
    std::map<std::string, double> out;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
        auto s = read_stat(task.path() / "stat");
        if (!s) continue;
        if (s->name.starts_with("rdk:broker")) s->name = "rdk:broker";  // one per broker and client
        out[s->name] += s->seconds;
    }
    return out;
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One client for the watermark queries, made once: a handle per query would spend the CPU
// this bench measures on starting and stopping librdkafka clients.
class Watermarks {
public:
    explicit Watermarks(const kafka::KafkaSettings& s) {
        ctx_.role = "bench";
        rk_ = kafka::detail::new_handle(RD_KAFKA_CONSUMER, kafka::detail::make_conf(kafka::admin_properties(s)), ctx_);
    }
    std::int64_t high(const std::string& topic) {
        std::int64_t total = 0;
        for (int p = 0; p < kPartitions; ++p) {
            std::int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), p, &lo, &hi, 5000) == 0) total += hi;
        }
        return total;
    }
    std::int64_t routed() { return high("omnibus.outbox.ai") + high("omnibus.outbox.human"); }
    bool wait_for(const std::string& topic, std::int64_t want, double timeout_s) {
        auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
        while (Clock::now() < deadline) {
            if ((topic.empty() ? routed() : high(topic)) >= want) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

private:
    kafka::detail::ClientContext ctx_;  // outlives the handle
    kafka::detail::HandlePtr rk_;
};

const std::vector<std::string>& texts() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> out;
        std::ifstream in(std::string(OMNIBUS_SOURCE_DIR) + "/tests/data/classify/corpus.tsv");
        for (std::string line; std::getline(in, line);)
            if (!line.empty() && line[0] != '#') out.push_back(line.substr(line.rfind('\t') + 1));
        if (out.empty()) out.push_back("Hello, where is my order?");
        return out;
    }();
    return all;
}

envelope::Envelope message(int customer, int n, envelope::Timestamp at) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    const std::string number = "4915" + std::to_string(10000000 + customer);
    e.channel = {"whatsapp", "wa-bench"};
    e.sender.id = "whatsapp:" + number;
    e.sender.identities = {"phone:+" + number};
    e.sender.display_name = "Customer " + std::to_string(customer);
    const auto& t = texts();
    e.content.text = t[static_cast<std::size_t>(customer + n) % t.size()] + " #" + std::to_string(100000 + customer);
    e.received_at = at;
    e.platform = envelope::Platform{"wamid.bench." + e.id, at, std::nullopt};
    return e;
}

void produce_phase(kafka::Producer& producer, int customers, int first, int last, envelope::Timestamp t0) {
    for (int n = first; n < last; ++n)
        for (int c = 0; c < customers; ++c) {
            auto e = message(c, n, t0 + std::chrono::seconds(n) + std::chrono::milliseconds(c % 1000));
            kafka::Record r = envelope::encode(e, e.sender.id);
            r.topic = "omnibus.inbound";
            producer.produce(std::move(r), nullptr);
        }
    producer.flush(std::chrono::seconds(60));
}

// The input's producer in a child process of its own, forked (like the brokers) before this
// process starts a thread: the records of a phase are produced while the stages run, as in
// production, and none of the producer's CPU counts as the pipeline's. Commands go down a
// pipe ("<first> <last>\n"), each answered with one byte once its records are on Kafka.
struct FeederProcess {
    pid_t pid = -1;
    int commands = -1;
    int answers = -1;

    FeederProcess(kafka::KafkaSettings settings, int customers, envelope::Timestamp t0) {
        int down[2], up[2];
        if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
        pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            ::close(down[1]);
            ::close(up[0]);
            FILE* in = ::fdopen(down[0], "r");
            char line[512];
            if (!in || !std::fgets(line, sizeof line, in)) ::_exit(1);
            settings.brokers = line;
            while (!settings.brokers.empty() && settings.brokers.back() == '\n') settings.brokers.pop_back();
            {
                metrics::Registry reg;
                kafka::Producer producer(settings, reg);
                int first = 0, last = 0;
                while (std::fgets(line, sizeof line, in) && std::sscanf(line, "%d %d", &first, &last) == 2) {
                    produce_phase(producer, customers, first, last, t0);
                    if (::write(up[1], "k", 1) != 1) break;
                }
            }
            ::_exit(0);
        }
        ::close(down[0]);
        ::close(up[1]);
        commands = down[1];
        answers = up[0];
    }
    void send(const std::string& line) {
        if (::write(commands, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            throw std::runtime_error("the feeder process is gone");
    }
    bool produced() {  // waits for the answer to the last command
        char c;
        return ::read(answers, &c, 1) == 1;
    }
    ~FeederProcess() {
        ::close(commands);
        ::close(answers);
        int status = 0;
        ::waitpid(pid, &status, 0);
    }
};

}  // namespace

int main(int argc, char** argv) {
    const int customers = argc > 1 ? std::atoi(argv[1]) : 2000;
    const int per_customer = argc > 2 ? std::atoi(argv[2]) : 10;
    log::set_level(log::Level::warn);

    kafka::KafkaSettings s;
    s.embedded = true;
    s.partitions = kPartitions;
    s.replication_factor = 1;
    s.session_timeout = std::chrono::milliseconds(3500);
    s.heartbeat_interval = std::chrono::milliseconds(100);
    if (const char* l = std::getenv("LINGER_US")) s.linger = std::chrono::microseconds(std::atoi(l));
    if (const char* c = std::getenv("KAFKA_CLIENT")) {  // "name=value;name=value", as kafka.client
        std::istringstream props(c);
        for (std::string kv; std::getline(props, kv, ';');)
            if (auto eq = kv.find('='); eq != std::string::npos) s.client[kv.substr(0, eq)] = Secret(kv.substr(eq + 1));
    }
    std::vector<kafka::TopicSpec> topics = kafka::omnibus_topics(s);
    for (auto& t : kafka::pipeline_topics(s)) topics.push_back(std::move(t));
    kafka::TopicSpec copy;
    copy.name = "bench.copy";
    copy.partitions = kPartitions;
    topics.push_back(copy);
    BrokerProcess brokers(topics);  // before any thread of this process exists
    const auto t0 = envelope::now_ms();
    FeederProcess feeder(s, customers, t0);  // also before any thread
    s.brokers = brokers.bootstrap;
    feeder.send(s.brokers + "\n");

    const std::string dir = "/tmp/omnibus-bench-pipeline-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    metrics::Registry reg;
    kafka::Producer producer(s, reg);
    // The stages' own producer, as omnibusd runs them (pipeline.producer_linger_ms).
    kafka::KafkaSettings ps = s;
    ps.linger = pipeline::PipelineSettings{}.producer_linger;
    if (const char* l = std::getenv("PIPELINE_LINGER_US")) ps.linger = std::chrono::microseconds(std::atoi(l));
    kafka::Producer stage_producer(ps, reg, {{"producer", "pipeline"}});
    const char* txn_env = std::getenv("TRANSACTIONS");
    const bool transactions = txn_env && std::string(txn_env) == "on";
    std::unique_ptr<kafka::Producer> txn_producer;
    if (transactions) {
        txn_producer = std::make_unique<kafka::Producer>(ps, reg, metrics::Labels{{"producer", "transactional"}},
                                                         "bench.conversation.txn");
        if (std::string e = txn_producer->init_transactions(std::chrono::seconds(10)); !e.empty()) {
            std::fprintf(stderr, "bench_pipeline: transactions unavailable: %s\n", e.c_str());
            return 1;
        }
    }

    pipeline::identity::IdentityService identity(
        s, reg, producer,
        pipeline::identity::IdentityServiceOptions{dir + "/identity", "omnibus.identity", "omnibus.events", "bench",
                                                   std::chrono::hours(24), {}});
    pipeline::history::ConversationStageOptions co;
    co.group_id = "bench.conversation";
    co.input_topic = "omnibus.pipeline.customer";
    co.changelog_topic = "omnibus.changelog.history";
    co.outbox_topic = "omnibus.outbox.ai";
    co.human_outbox_topic = "omnibus.outbox.human";
    co.delivery_topic = "omnibus.delivery";
    co.deadletter_topic = "omnibus.deadletter";
    co.store_dir = dir + "/history";
    co.partition_count = kPartitions;
    auto classifier = pipeline::classify::Classifier::builtin();
    co.classify = [classifier](envelope::Envelope& env, const std::string& previous) { classifier->apply(env, previous); };
    co.customer = [&identity](std::string_view id) -> std::optional<pipeline::history::CustomerRef> {
        auto c = identity.customer_shared(id);
        if (!c) return std::nullopt;
        return pipeline::history::CustomerRef{c->id, c->aliases, {c->attributes.begin(), c->attributes.end()}};
    };
    co.transactional_producer = txn_producer.get();
    co.transaction_interval = pipeline::PipelineSettings{}.transaction_interval;
    pipeline::history::ConversationStage conversation(s, co, stage_producer, reg);
    pipeline::identity::ResolveStage resolve(
        s,
        pipeline::identity::ResolveStageOptions{"bench.identity", "omnibus.inbound", "omnibus.pipeline.customer",
                                                "omnibus.deadletter", {}, 20000},
        identity, stage_producer, reg);
    // Wait for both groups to have their partitions (the mock delays a new group by ~3 s).
    auto joined = Clock::now() + std::chrono::seconds(30);
    while ((!resolve.has_assignment() || !conversation.has_assignment()) && Clock::now() < joined)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));

    Watermarks marks(s);
    std::printf("pipeline: %d customers x %d messages, %d partitions, embedded cluster in a child process, "
                "producer linger %.2f ms (stages) / %.2f ms (identity), transactions %s\n",
                customers, per_customer, kPartitions, static_cast<double>(ps.linger.count()) / 1000.0,
                static_cast<double>(s.linger.count()) / 1000.0,
                transactions ? "on (every 100 ms)" : "off (as with kafka.embedded)");

    // The stage counts a message once its routed record and its changelog record are on Kafka.
    // Waiting on that counter costs this process nothing; polling the watermarks while the
    // phase runs cost about a tenth of a core (a query per partition every 20 ms), which is
    // not the pipeline's. The watermarks confirm the count once the clock has stopped.
    const metrics::Counter& emitted = reg.counter("omnibus_conversation_messages_total", "Messages added to a history and emitted");
    auto wait_emitted = [&](std::uint64_t want, double timeout_s) {
        const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
        while (emitted.value() < want && Clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        return emitted.value() >= want;
    };
    auto phase = [&](const char* name, int first, int last) {
        const std::int64_t before = marks.routed();
        const std::uint64_t emitted_before = emitted.value();
        const std::int64_t n = static_cast<std::int64_t>(customers) * (last - first);
        // The clock runs from the first record produced to the last one routed.
        const auto threads0 = thread_cpu_seconds();
        const double c0 = cpu_seconds(), b0 = process_cpu_seconds(brokers.pid);
        const auto w0 = Clock::now();
        feeder.send(std::to_string(first) + " " + std::to_string(last) + "\n");
        const bool counted = wait_emitted(emitted_before + static_cast<std::uint64_t>(n), 300);
        const double wall = std::chrono::duration<double>(Clock::now() - w0).count();
        const double cpu = cpu_seconds() - c0, bcpu = process_cpu_seconds(brokers.pid) - b0;
        auto threads = thread_cpu_seconds();
        const bool ok = counted && marks.wait_for("", before + n, 30) && feeder.produced();
        const double dn = static_cast<double>(n);
        std::printf("  %-14s %8lld msgs  %8.0f msg/s wall  %8.0f msg/CPU-s (pipeline process; brokers %.0f, both %.0f)  %s\n",
                    name, static_cast<long long>(n), dn / wall, dn / cpu, bcpu > 0 ? dn / bcpu : 0.0, dn / (cpu + bcpu),
                    ok ? "all routed" : "NOT ALL ROUTED");
        // Where the process's CPU went (threads that ended meanwhile are not in it).
        std::string where;
        for (auto& [thread, sec] : threads) {
            const double used = sec - (threads0.contains(thread) ? threads0.at(thread) : 0.0);
            if (used * 1e6 / dn < 0.5) continue;
            char figure[32];
            std::snprintf(figure, sizeof figure, " %.1f", used * 1e6 / dn);
            where += "  " + thread + figure;
        }
        std::printf("    µs of CPU per message by thread:%s\n", where.c_str());
        return std::pair<double, double>{static_cast<double>(n) / wall, static_cast<double>(n) / cpu};
    };
    phase("first contact", 0, 1);
    const auto [returning_wall, returning_cpu] = phase("returning", 1, per_customer);

    // Ceiling: the same records, consumed and produced again by kcat, on the same cluster.
    const std::int64_t inbound = marks.high("omnibus.inbound");
    const auto k0 = Clock::now();
    const double kc0 = children_cpu_seconds();
    const std::string cmd = "kcat -C -q -e -b " + s.brokers + " -t omnibus.inbound -o beginning -f '%k\\t%s\\n' | kcat -P -b " +
                            s.brokers + " -t bench.copy -K '\\t' 2>/dev/null";
    int rc = std::system(cmd.c_str());
    marks.wait_for("bench.copy", inbound, 60);
    const double kwall = std::chrono::duration<double>(Clock::now() - k0).count();
    const double kcpu = children_cpu_seconds() - kc0;  // both kcat processes (and the shell)
    const double ceiling = static_cast<double>(inbound) / kwall;
    const double ceiling_cpu = kcpu > 0 ? static_cast<double>(inbound) / kcpu : 0;
    std::printf("  kcat consume->produce (ceiling): %lld msgs, %.0f msg/s wall, %.0f msg/CPU-s of the two kcats%s\n",
                static_cast<long long>(inbound), ceiling, ceiling_cpu, rc == 0 ? "" : " (kcat failed)");
    std::printf("  returning customers: %.2f of the kcat ceiling (wall), %.2f of kcat's msg/CPU-s for one hop "
                "(the pipeline makes two: 2 consumes, 3 produces), %.2f of the 100,000 msg/s per core target "
                "(CPU-s of the pipeline process)\n",
                returning_wall / ceiling, ceiling_cpu > 0 ? returning_cpu / ceiling_cpu : 0.0, returning_cpu / 100000.0);

    resolve.stop();
    conversation.stop();
    identity.stop();
    std::filesystem::remove_all(dir);
    return 0;
}
