// Loading the rules file into compiled rules, and evaluating them (router.h).
#include "pipeline/route/router.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "config/did_you_mean.h"
#include "config/text_file.h"
#include "config/value.h"
#include "envelope/json.h"
#include "pipeline/route/calendar.h"
#include "pipeline/route/conditions.h"

namespace omnibus::pipeline::route {

using config::Diagnostic;
using config::Position;
using detail::ConditionPtr;

std::string_view to_string(ConversationState s) {
    switch (s) {
        case ConversationState::new_: return "new";
        case ConversationState::open: return "open";
        case ConversationState::reopened: return "reopened";
    }
    return "open";
}

std::optional<cctz::time_zone> load_time_zone(std::string_view name) {
    // An IANA name, never a path: the name becomes a file under /usr/share/zoneinfo, and cctz
    // keeps every name it was asked for.
    if (name.empty() || name.size() > 64 || name.front() == '/' || name.find("..") != std::string_view::npos)
        return std::nullopt;
    for (char c : name)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
              c == '-' || c == '+'))
            return std::nullopt;
    cctz::time_zone tz;
    if (!cctz::load_time_zone(std::string(name), &tz)) return std::nullopt;
    return tz;
}

const std::vector<std::string>& default_intents() {
    static const std::vector<std::string> intents = {
        "order_status", "shipping", "return_refund", "payment",         "product_question", "account",
        "complaint",    "greeting", "human_requested", "other"};
    return intents;
}

// ---- the compiled rules --------------------------------------------------------------

namespace {

struct Action {
    envelope::RouteTarget target = envelope::RouteTarget::ai;
    int priority = 0;
    bool has_queue = false;
    std::string queue_prefix;  // the whole queue when not templated
    bool queue_templated = false;
    std::string queue_suffix;
    std::vector<std::string> flags;
};

struct Rule {
    std::string name;
    Position position;
    std::vector<ConditionPtr> conditions;  // all must match; none: catch-all
    Action action;
};

}  // namespace

struct Router::Impl {
    std::vector<Rule> rules;
    std::vector<std::string> names;
    std::vector<std::unique_ptr<Calendar>> calendars;
    cctz::time_zone team_zone = cctz::utc_time_zone();
    HandoffPolicy handoff;
    Action handoff_action{envelope::RouteTarget::human, 0, false, {}, false, {}, {"handoff"}};  // a human holds it
    Action handoff_escalated;       // the same, after an AI "cannot help" (flag cannot_help)
    Action fallback;                // no rule matched
    std::string fallback_name = "default";
    std::string handoff_name = "handoff:human";
};

Router::Router(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Router::~Router() = default;
std::size_t Router::rule_count() const { return impl_->rules.size(); }
const std::vector<std::string>& Router::rule_names() const { return impl_->names; }
const HandoffPolicy& Router::handoff_policy() const { return impl_->handoff; }

// ---- evaluation ------------------------------------------------------------------------

namespace {

Decision decide(const Action& a, std::string_view rule, const envelope::Envelope& env) {
    Decision d;
    d.target = a.target;
    d.priority = a.priority;
    d.rule = rule;
    d.has_queue = a.has_queue;
    d.queue_prefix = a.queue_prefix;
    if (a.queue_templated) {
        const std::string_view lang = env.language ? std::string_view(*env.language) : std::string_view();
        d.queue_language = lang.substr(0, lang.find_first_of("-_"));
        d.queue_suffix = a.queue_suffix;
    }
    d.flags = a.flags;
    return d;
}

}  // namespace

std::string Decision::queue() const {
    std::string q;
    q.reserve(queue_prefix.size() + queue_language.size() + queue_suffix.size());
    q.append(queue_prefix);
    for (char c : queue_language) q.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
    q.append(queue_suffix);
    return q;
}

envelope::Route Decision::to_route() const {
    envelope::Route r;
    r.target = target;
    r.rule = std::string(rule);
    r.priority = priority;
    if (has_queue) r.queue = queue();
    r.flags.assign(flags.begin(), flags.end());
    return r;
}

Decision Router::route(const envelope::Envelope& env, const RouteContext& ctx) const {
    const Impl& m = *impl_;
    const HandoffState none;
    const HandoffState& h = ctx.handoff ? *ctx.handoff : none;
    const Owner owner = effective_owner(h, envelope::Timestamp(std::chrono::time_point_cast<std::chrono::milliseconds>(ctx.now).time_since_epoch()), m.handoff);
    if (owner == Owner::human) {
        Decision d = decide(h.reason == HandoffReason::cannot_help ? m.handoff_escalated : m.handoff_action,
                            m.handoff_name, env);
        d.handoff_override = true;
        return d;
    }
    const detail::Input in{env, ctx, env.language ? std::string_view(*env.language) : std::string_view(), owner,
                           h.owner == owner ? h.ai_turns : 0, m.team_zone};
    for (const Rule& r : m.rules) {
        bool all = true;
        for (const auto& c : r.conditions) {
            if (!c->eval(in)) {
                all = false;
                break;
            }
        }
        if (all) return decide(r.action, r.name, env);
    }
    return decide(m.fallback, m.fallback_name, env);
}

Explanation Router::explain(const envelope::Envelope& env, const RouteContext& ctx) const {
    const Impl& m = *impl_;
    Explanation e;
    const HandoffState none;
    const HandoffState& h = ctx.handoff ? *ctx.handoff : none;
    const envelope::Timestamp now(std::chrono::time_point_cast<std::chrono::milliseconds>(ctx.now).time_since_epoch());
    const Owner owner = effective_owner(h, now, m.handoff);
    if (owner == Owner::human) {
        e.handoff = "a human holds the conversation (" + std::string(to_string(h.reason)) +
                    (h.agent ? ", " + *h.agent : std::string()) + "); the rules are not evaluated";
        e.route = route(env, ctx).to_route();
        return e;
    }
    if (h.owner == Owner::human) {
        e.handoff = "released to the AI: no human action for " + config::format_duration(m.handoff.release_after_idle);
    }
    const detail::Input in{env, ctx, env.language ? std::string_view(*env.language) : std::string_view(), owner,
                           h.owner == owner ? h.ai_turns : 0, m.team_zone};
    for (const Rule& r : m.rules) {
        RuleTrace t{r.name, r.position, true, {}};
        for (const auto& c : r.conditions) {
            if (!c->explain(in, 0, t.conditions)) t.matched = false;
        }
        const bool won = t.matched;
        e.rules.push_back(std::move(t));
        if (won) break;
    }
    e.route = route(env, ctx).to_route();
    return e;
}

// ---- loading ---------------------------------------------------------------------------

std::string LoadResult::report() const {
    std::string out;
    for (const Diagnostic& d : errors) out += d.to_string() + "\n";
    for (const Diagnostic& d : warnings) out += d.to_string() + "\n";
    return out;
}

namespace {

constexpr std::size_t kMaxRulesFile = 4 << 20;
constexpr int kMaxDepth = 16;
constexpr std::size_t kMaxNodes = 100'000;
constexpr int kMaxPriority = 1'000'000;

Position position_of(const YAML::Mark& m) {
    if (m.is_null() || m.line < 0 || m.column < 0) return {};
    return {m.line + 1, m.column + 1};
}

// Text from the file in a message: quoted, cut when long, control bytes and
// broken UTF-8 shown as '?'.
std::string quote(std::string_view text) { return "'" + json::excerpt(text, 60) + "'"; }

std::string kind_of(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Null: return "nothing";
        case YAML::NodeType::Scalar: return quote(n.Scalar());
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Map: return "a mapping";
        default: return "nothing";
    }
}

const std::vector<std::string> kTopKeys = {"version", "time_zone", "handoff", "calendars", "rules"};
const std::vector<std::string> kRuleKeys = {"name", "description", "match", "route", "priority", "queue", "flags"};
const std::vector<std::string> kMatchKeys = {
    "channel_type", "channel_name", "language", "intent",     "sentiment",      "entity",   "customer",
    "conversation", "handoff",      "ai_turns_at_least",      "business_hours", "time_of_day",
    "keywords",     "regex",        "all_of",   "any_of",     "not"};
const std::vector<std::string> kDayNames = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

class Parser {
public:
    Parser(std::string file, const LoadOptions& options) : file_(std::move(file)), options_(options) {}

    LoadResult run(const std::string& text) {
        auto impl = std::make_unique<Router::Impl>();
        impl_ = impl.get();
        try {
            const YAML::Node doc = YAML::Load(text);
            top(doc);
        } catch (const YAML::Exception& e) {
            error(position_of(e.mark), "invalid YAML: " + e.msg);
        }
        LoadResult result;
        std::stable_sort(errors_.begin(), errors_.end(),
                         [](const Diagnostic& a, const Diagnostic& b) { return a.position < b.position; });
        errors_.erase(std::unique(errors_.begin(), errors_.end()), errors_.end());
        result.errors = std::move(errors_);
        result.warnings = std::move(warnings_);
        if (result.errors.empty()) {
            for (const Rule& r : impl->rules) impl->names.push_back(r.name);
            result.router = std::make_shared<const Router>(std::move(impl));
        }
        return result;
    }

private:
    void error(Position p, std::string message) { errors_.push_back(Diagnostic{file_, p, std::move(message)}); }
    void warning(Position p, std::string message) {
        warnings_.push_back(Diagnostic{file_, p, "warning: " + std::move(message)});
    }
    static Position at(const YAML::Node& n) { return position_of(n.Mark()); }

    bool count_node() {
        if (++nodes_ <= kMaxNodes) return true;
        if (nodes_ == kMaxNodes + 1) error({}, "the rules file is too large (over 100,000 entries)");
        return false;
    }

    // The pairs of a mapping with plain keys, duplicates and unknown keys reported.
    std::vector<std::pair<std::string, YAML::Node>> pairs(const YAML::Node& map, const std::vector<std::string>& known,
                                                          const std::string& where) {
        std::vector<std::pair<std::string, YAML::Node>> out;
        std::set<std::string> seen;
        for (const auto& kv : map) {
            if (!count_node()) break;
            const YAML::Node& k = kv.first;
            if (!k.IsScalar()) {
                error(at(k), where + ": a key must be a plain name, got " + kind_of(k));
                continue;
            }
            const std::string key = k.Scalar();
            if (!seen.insert(key).second) {
                error(at(k), where + ": duplicate key " + quote(key));
                continue;
            }
            if (!known.empty() && std::find(known.begin(), known.end(), key) == known.end()) {
                std::string msg = where + ": unknown key " + quote(key);
                if (auto s = config::did_you_mean(key, known)) msg += "; did you mean '" + *s + "'?";
                error(at(k), msg);
                continue;
            }
            out.emplace_back(key, kv.second);
        }
        return out;
    }

    std::optional<std::string> scalar(const YAML::Node& n, const std::string& what) {
        if (!n.IsScalar() || n.Scalar().empty()) {
            error(at(n), what + ": expected a non-empty string, got " + kind_of(n));
            return std::nullopt;
        }
        return n.Scalar();
    }

    // A string or a list of strings.
    std::optional<std::vector<std::string>> strings(const YAML::Node& n, const std::string& what) {
        std::vector<std::string> out;
        if (n.IsScalar()) {
            if (auto s = scalar(n, what)) out.push_back(*s);
            else return std::nullopt;
        } else if (n.IsSequence()) {
            bool ok = true;
            for (const auto& item : n) {
                if (!count_node()) return std::nullopt;
                if (auto s = scalar(item, what)) out.push_back(*s);
                else ok = false;
            }
            if (!ok) return std::nullopt;
            if (out.empty()) {
                error(at(n), what + ": expected at least one value");
                return std::nullopt;
            }
        } else {
            error(at(n), what + ": expected a string or a list of strings, got " + kind_of(n));
            return std::nullopt;
        }
        return out;
    }

    std::optional<double> real(const YAML::Node& n, const std::string& what) {
        if (!n.IsScalar()) {
            error(at(n), what + ": expected a number, got " + kind_of(n));
            return std::nullopt;
        }
        auto p = config::parse_real(n.Scalar());
        if (!p.value) error(at(n), what + ": " + p.error + ", got " + quote(n.Scalar()));
        return p.value;
    }

    std::optional<std::int64_t> integer(const YAML::Node& n, const std::string& what, std::int64_t lo, std::int64_t hi) {
        if (!n.IsScalar()) {
            error(at(n), what + ": expected an integer, got " + kind_of(n));
            return std::nullopt;
        }
        auto p = config::parse_integer(n.Scalar());
        if (!p.value) {
            error(at(n), what + ": " + p.error + ", got " + quote(n.Scalar()));
            return std::nullopt;
        }
        if (*p.value < lo || *p.value > hi) {
            error(at(n), what + ": " + std::to_string(*p.value) + " is outside " + std::to_string(lo) + ".." +
                             std::to_string(hi));
            return std::nullopt;
        }
        return p.value;
    }

    std::optional<bool> boolean(const YAML::Node& n, const std::string& what) {
        if (!n.IsScalar()) {
            error(at(n), what + ": expected true or false, got " + kind_of(n));
            return std::nullopt;
        }
        auto p = config::parse_boolean(n.Scalar());
        if (!p.value) error(at(n), what + ": " + p.error + ", got " + quote(n.Scalar()));
        return p.value;
    }

    std::optional<cctz::time_zone> zone(const YAML::Node& n, const std::string& what) {
        auto name = scalar(n, what);
        if (!name) return std::nullopt;
        auto tz = load_time_zone(*name);
        if (!tz) error(at(n), what + ": unknown time zone " + quote(*name) + " (an IANA name such as 'Europe/Madrid')");
        return tz;
    }

    std::unique_ptr<RE2> regex(const std::string& pattern, const YAML::Node& n, const std::string& what,
                               bool literal_ci = false) {
        RE2::Options o;
        o.set_log_errors(false);
        o.set_max_mem(8 << 20);
        if (literal_ci) o.set_case_sensitive(false);
        auto re = std::make_unique<RE2>(pattern, o);
        if (!re->ok()) {
            error(at(n), what + ": bad regular expression " + quote(pattern) + ": " + re->error());
            return nullptr;
        }
        return re;
    }

    // ---- top level ----

    void top(const YAML::Node& doc) {
        if (doc.IsNull()) {
            error({1, 1}, "the rules file is empty; it needs a 'rules' list");
            return;
        }
        if (!doc.IsMap()) {
            error(at(doc), "expected a mapping with 'rules' at the top level, got " + kind_of(doc));
            return;
        }
        auto items = pairs(doc, kTopKeys, "rules file");
        const YAML::Node* rules = nullptr;
        // The team's zone first: calendars default to it.
        for (auto& [k, v] : items) {
            if (k == "time_zone") {
                if (auto tz = zone(v, "time_zone")) {
                    impl_->team_zone = *tz;
                    team_zone_name_ = v.Scalar();
                }
            }
        }
        for (auto& [k, v] : items) {
            if (k == "version") {
                if (auto n = integer(v, "version", 1, 1)) (void)n;
            } else if (k == "handoff") {
                handoff(v);
            } else if (k == "calendars") {
                calendars(v);
            } else if (k == "rules") {
                rules = &v;
            }
        }
        if (!rules) {
            error(at(doc), "the rules file has no 'rules' list");
            return;
        }
        rule_list(*rules);
        impl_->handoff_escalated = impl_->handoff_action;
        impl_->handoff_escalated.flags.push_back("cannot_help");
    }

    void handoff(const YAML::Node& n) {
        if (!n.IsMap()) {
            error(at(n), "handoff: expected a mapping, got " + kind_of(n));
            return;
        }
        for (auto& [k, v] : pairs(n, {"release_after_idle", "priority", "queue"}, "handoff")) {
            if (k == "release_after_idle") {
                if (!v.IsScalar()) {
                    error(at(v), "handoff.release_after_idle: expected a duration such as '4h', got " + kind_of(v));
                    continue;
                }
                auto d = config::parse_duration(v.Scalar());
                if (!d.value) error(at(v), "handoff.release_after_idle: " + d.error + ", got " + quote(v.Scalar()));
                else impl_->handoff.release_after_idle = *d.value;
            } else if (k == "priority") {
                if (auto p = integer(v, "handoff.priority", -kMaxPriority, kMaxPriority))
                    impl_->handoff_action.priority = static_cast<int>(*p);
            } else if (k == "queue") {
                queue(v, "handoff.queue", impl_->handoff_action);
            }
        }
    }

    void calendars(const YAML::Node& n) {
        if (!n.IsMap()) {
            error(at(n), "calendars: expected a mapping of calendar names, got " + kind_of(n));
            return;
        }
        for (auto& [name, body] : pairs(n, {}, "calendars")) calendar(name, body);
    }

    std::optional<OpenInterval> interval(const std::string& text, const YAML::Node& n, const std::string& what) {
        // "09:00-18:00"; end may be 24:00.
        auto parse_hm = [](std::string_view s) -> std::optional<int> {
            if (s.size() != 5 || s[2] != ':') return std::nullopt;
            for (std::size_t i : {0u, 1u, 3u, 4u})
                if (s[i] < '0' || s[i] > '9') return std::nullopt;
            const int h = (s[0] - '0') * 10 + (s[1] - '0');
            const int m = (s[3] - '0') * 10 + (s[4] - '0');
            if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
            return h * 60 + m;
        };
        const auto dash = text.find('-');
        std::optional<int> a, b;
        if (dash != std::string::npos) {
            a = parse_hm(std::string_view(text).substr(0, dash));
            b = parse_hm(std::string_view(text).substr(dash + 1));
        }
        if (!a || !b) {
            error(at(n), what + ": expected a time range such as '09:00-18:00', got " + quote(text));
            return std::nullopt;
        }
        return OpenInterval{*a, *b};
    }

    // "mon", or a range "mon-fri"; returns a day mask.
    std::optional<unsigned> days(const std::string& text, const YAML::Node& n, const std::string& what) {
        auto index = [](std::string_view s) -> int {
            for (int i = 0; i < 7; ++i)
                if (s == kDayNames[static_cast<std::size_t>(i)]) return i;
            return -1;
        };
        const auto dash = text.find('-');
        const int a = index(std::string_view(text).substr(0, dash));
        const int b = dash == std::string::npos ? a : index(std::string_view(text).substr(dash + 1));
        if (a < 0 || b < 0) {
            std::string msg = what + ": unknown day " + quote(text) + " (mon, tue, … sun, or a range such as 'mon-fri')";
            if (auto s = config::did_you_mean(text, kDayNames)) msg += "; did you mean '" + *s + "'?";
            error(at(n), msg);
            return std::nullopt;
        }
        unsigned mask = 0;
        for (int i = a;; i = (i + 1) % 7) {
            mask |= 1u << i;
            if (i == b) break;
        }
        return mask;
    }

    void calendar(const std::string& name, const YAML::Node& n) {
        const std::string where = "calendars." + name;
        auto cal = std::make_unique<Calendar>();
        cal->name = name;
        cal->zone = impl_->team_zone;
        cal->time_zone_name = team_zone_name_;
        if (!n.IsMap()) {
            error(at(n), where + ": expected a mapping with 'hours', got " + kind_of(n));
            return;
        }
        bool has_hours = false;
        for (auto& [k, v] : pairs(n, {"time_zone", "hours", "holidays"}, where)) {
            if (k == "time_zone") {
                if (auto tz = zone(v, where + ".time_zone")) {
                    cal->zone = *tz;
                    cal->time_zone_name = v.Scalar();
                }
            } else if (k == "hours") {
                has_hours = true;
                if (!v.IsMap()) {
                    error(at(v), where + ".hours: expected a mapping of days to hours, got " + kind_of(v));
                    continue;
                }
                unsigned set = 0;
                for (auto& [day, hours] : pairs(v, {}, where + ".hours")) {
                    const YAML::Node key_node = hours;  // position of the value is close enough
                    auto mask = days(day, key_node, where + ".hours");
                    if (!mask) continue;
                    if (set & *mask) error(at(hours), where + ".hours: " + quote(day) + " overlaps a day given before");
                    set |= *mask;
                    std::vector<OpenInterval> intervals;
                    if (hours.IsScalar() && hours.Scalar() == "closed") {
                        // closed: no intervals
                    } else if (auto texts = strings(hours, where + ".hours." + day)) {
                        for (const std::string& t : *texts) {
                            auto i = interval(t, hours, where + ".hours." + day);
                            if (!i) continue;
                            if (i->end <= i->start) {
                                error(at(hours), where + ".hours." + day + ": " + quote(t) +
                                                     " ends before it starts (split a night shift over two days)");
                                continue;
                            }
                            intervals.push_back(*i);
                        }
                    }
                    for (int d = 0; d < 7; ++d)
                        if (*mask & (1u << d)) cal->week[static_cast<std::size_t>(d)] = intervals;
                }
            } else if (k == "holidays") {
                if (v.IsSequence() && v.size() == 0) continue;
                auto texts = strings(v, where + ".holidays");
                if (!texts) continue;
                for (const std::string& t : *texts) {
                    cctz::civil_day d;
                    if (!parse_date(t, d)) {
                        error(at(v), where + ".holidays: expected a date such as '2026-12-25', got " + quote(t));
                        continue;
                    }
                    cal->holidays.push_back(d);
                }
                std::sort(cal->holidays.begin(), cal->holidays.end());
            }
        }
        if (!has_hours) error(at(n), where + ": 'hours' is required");
        calendars_.emplace(name, cal.get());
        calendar_names_.push_back(name);
        impl_->calendars.push_back(std::move(cal));
    }

    static bool parse_date(const std::string& t, cctz::civil_day& out) {
        if (t.size() != 10 || t[4] != '-' || t[7] != '-') return false;
        for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u})
            if (t[i] < '0' || t[i] > '9') return false;
        const int y = std::stoi(t.substr(0, 4)), m = std::stoi(t.substr(5, 2)), d = std::stoi(t.substr(8, 2));
        const cctz::civil_day day(y, m, d);
        if (day.year() != y || day.month() != m || day.day() != d) return false;  // 2026-02-30 normalises
        out = day;
        return true;
    }

    // ---- rules ----

    void rule_list(const YAML::Node& n) {
        if (!n.IsSequence()) {
            error(at(n), "rules: expected a list of rules, got " + kind_of(n));
            return;
        }
        if (n.size() == 0) {
            error(at(n), "rules: the list is empty");
            return;
        }
        std::map<std::string, Position> names;
        std::optional<std::string> catch_all;  // the first rule without conditions
        for (const auto& item : n) {
            if (!count_node()) return;
            Rule r;
            const bool ok = rule(item, r);
            // A rule with errors still claims its name, so a duplicate is reported in the same pass.
            if (!r.name.empty()) {
                if (auto [it, fresh] = names.emplace(r.name, r.position); !fresh) {
                    error(r.position, "rules: duplicate rule name " + quote(r.name) + "; first used at " +
                                          std::to_string(it->second.line) + ":" + std::to_string(it->second.column));
                    continue;
                }
            }
            if (!ok) continue;
            if (catch_all) {
                warning(r.position, "rule " + quote(r.name) + " is never reached: rule " + quote(*catch_all) +
                                        " before it matches every message");
            }
            if (r.conditions.empty() && !catch_all) catch_all = r.name;
            impl_->rules.push_back(std::move(r));
        }
        if (!catch_all && !impl_->rules.empty()) {
            warning(impl_->rules.back().position,
                    "no final catch-all rule (one without 'match'): messages no rule matches go to the AI "
                    "with rule 'default'");
        }
    }

    bool rule(const YAML::Node& n, Rule& r) {
        r.position = at(n);
        if (!n.IsMap()) {
            error(at(n), "rules: expected a rule (a mapping with 'name', 'match' and 'route'), got " + kind_of(n));
            return false;
        }
        const std::size_t errors_before = errors_.size();
        auto items = pairs(n, kRuleKeys, "rule");
        for (auto& [k, v] : items) {
            if (k == "name") {
                if (auto s = scalar(v, "rule name")) {
                    if (s->find(':') != std::string::npos) error(at(v), "rule name " + quote(*s) + ": ':' is reserved (handoff:human)");
                    r.name = *s;
                }
            }
        }
        const std::string where = r.name.empty() ? std::string("rule") : "rule " + quote(r.name);
        if (r.name.empty() && errors_.size() == errors_before) error(at(n), "rule: 'name' is required");
        bool has_route = false;
        for (auto& [k, v] : items) {
            if (k == "match") {
                if (v.IsNull()) continue;
                if (!v.IsMap()) {
                    error(at(v), where + ": match: expected a mapping of conditions, got " + kind_of(v));
                    continue;
                }
                r.conditions = match_map(v, where, 0);
            } else if (k == "route") {
                has_route = true;
                auto s = scalar(v, where + ": route");
                if (!s) continue;
                if (*s == "ai") {
                    r.action.target = envelope::RouteTarget::ai;
                } else if (*s == "human") {
                    r.action.target = envelope::RouteTarget::human;
                } else if (*s == "ai_draft") {
                    r.action.target = envelope::RouteTarget::human;
                    ai_draft_ = true;
                } else {
                    std::string msg = where + ": route: expected ai, human or ai_draft, got " + quote(*s);
                    if (auto m = config::did_you_mean(*s, {"ai", "human", "ai_draft"})) msg += "; did you mean '" + *m + "'?";
                    error(at(v), msg);
                }
            } else if (k == "priority") {
                if (auto p = integer(v, where + ": priority", -kMaxPriority, kMaxPriority))
                    r.action.priority = static_cast<int>(*p);
            } else if (k == "queue") {
                queue(v, where + ": queue", r.action);
            } else if (k == "flags") {
                if (v.IsSequence() && v.size() == 0) continue;
                if (auto f = strings(v, where + ": flags")) r.action.flags = *f;
            } else if (k == "description") {
                (void)scalar(v, where + ": description");
            }
        }
        if (ai_draft_) {
            if (std::find(r.action.flags.begin(), r.action.flags.end(), "ai_draft") == r.action.flags.end())
                r.action.flags.insert(r.action.flags.begin(), "ai_draft");
            ai_draft_ = false;
        }
        if (!has_route && !r.name.empty()) error(at(n), where + ": 'route' is required (ai, human or ai_draft)");
        return errors_.size() == errors_before;
    }

    void queue(const YAML::Node& v, const std::string& what, Action& a) {
        auto s = scalar(v, what);
        if (!s) return;
        const auto open = s->find('{');
        if (open == std::string::npos) {
            if (s->find('}') != std::string::npos) {
                error(at(v), what + ": unbalanced '}' in " + quote(*s));
                return;
            }
            a.has_queue = true;
            a.queue_prefix = *s;
            return;
        }
        const auto close = s->find('}', open);
        if (close == std::string::npos || s->substr(open, close - open + 1) != "{language}" ||
            s->find_first_of("{}", close + 1) != std::string::npos) {
            error(at(v), what + ": the only placeholder is '{language}' (once), got " + quote(*s));
            return;
        }
        a.has_queue = true;
        a.queue_templated = true;
        a.queue_prefix = s->substr(0, open);
        a.queue_suffix = s->substr(close + 1);
    }

    // The keys of a `match` mapping: one condition per key, all must match.
    std::vector<ConditionPtr> match_map(const YAML::Node& n, const std::string& where, int depth) {
        std::vector<ConditionPtr> out;
        if (depth > kMaxDepth) {
            error(at(n), where + ": conditions nested too deeply (over " + std::to_string(kMaxDepth) + ")");
            return out;
        }
        for (auto& [k, v] : pairs(n, kMatchKeys, where + ": match")) {
            if (auto c = condition(k, v, where, depth)) out.push_back(std::move(c));
        }
        return out;
    }

    std::vector<ConditionPtr> condition_list(const YAML::Node& v, const std::string& where, const std::string& key,
                                             int depth) {
        const std::string what = where + ": " + key;
        std::vector<ConditionPtr> out;
        if (!v.IsSequence() || v.size() == 0) {
            error(at(v), what + ": expected a non-empty list of condition mappings, got " + kind_of(v));
            return out;
        }
        for (const auto& item : v) {
            if (!count_node()) return out;
            if (!item.IsMap()) {
                error(at(item), what + ": expected a mapping of conditions, got " + kind_of(item));
                continue;
            }
            auto children = match_map(item, where, depth + 1);
            if (children.size() == 1) {
                out.push_back(std::move(children.front()));
            } else if (!children.empty()) {
                std::string text = "all of";
                out.push_back(std::make_unique<detail::AllOf>(text, std::move(children)));
            }
        }
        return out;
    }

    // `where` names the rule ("rule 'x'"); messages add the key. Nested
    // combinators keep the rule's name rather than a path through them.
    ConditionPtr condition(const std::string& key, const YAML::Node& v, const std::string& where, int depth) {
        const std::string what = where + ": " + key;
        if (key == "channel_type" || key == "channel_name") {
            auto s = strings(v, what);
            return s ? detail::make_channel(key == "channel_name", *s) : nullptr;
        }
        if (key == "language") {
            auto s = strings(v, what);
            if (!s) return nullptr;
            for (const std::string& t : *s) {
                const bool ok = t.size() >= 2 && t.size() <= 35 &&
                                std::all_of(t.begin(), t.end(), [](char c) {
                                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                           c == '-' || c == '_';
                                });
                if (!ok) {
                    error(at(v), what + ": " + quote(t) + " is not a language tag (e.g. 'es', 'pt-BR')");
                    return nullptr;
                }
            }
            return detail::make_language(*s);
        }
        if (key == "intent") return intent(v, what);
        if (key == "sentiment") return sentiment(v, what);
        if (key == "entity") return entity(v, what);
        if (key == "customer") return customer(v, what);
        if (key == "conversation") {
            auto s = strings(v, what);
            if (!s) return nullptr;
            unsigned mask = 0;
            for (const std::string& t : *s) {
                if (t == "new") mask |= 1u << static_cast<unsigned>(ConversationState::new_);
                else if (t == "open") mask |= 1u << static_cast<unsigned>(ConversationState::open);
                else if (t == "reopened") mask |= 1u << static_cast<unsigned>(ConversationState::reopened);
                else {
                    std::string msg = what + ": expected new, open or reopened, got " + quote(t);
                    if (auto m = config::did_you_mean(t, {"new", "open", "reopened"})) msg += "; did you mean '" + *m + "'?";
                    error(at(v), msg);
                    return nullptr;
                }
            }
            return detail::make_conversation(mask);
        }
        if (key == "handoff") {
            auto s = scalar(v, what);
            if (!s) return nullptr;
            if (*s == "ai") return detail::make_handoff(Owner::ai);
            if (*s == "human") return detail::make_handoff(Owner::human);
            error(at(v), what + ": expected ai or human, got " + quote(*s));
            return nullptr;
        }
        if (key == "ai_turns_at_least") {
            auto n = integer(v, what, 1, 1'000'000);
            return n ? detail::make_ai_turns(static_cast<std::uint32_t>(*n)) : nullptr;
        }
        if (key == "business_hours") return business_hours(v, what);
        if (key == "time_of_day") return time_of_day(v, what);
        if (key == "keywords") {
            auto s = strings(v, what);
            if (!s) return nullptr;
            std::string pattern;
            for (const std::string& k : *s) {
                if (!pattern.empty()) pattern += '|';
                pattern += RE2::QuoteMeta(k);
            }
            auto re = regex(pattern, v, what, true);
            return re ? detail::make_content(std::move(re), "text contains any of " + detail::list_text(*s)) : nullptr;
        }
        if (key == "regex") {
            auto s = scalar(v, what);
            if (!s) return nullptr;
            auto re = regex(*s, v, what);
            return re ? detail::make_content(std::move(re), "text matches /" + *s + "/") : nullptr;
        }
        if (key == "all_of" || key == "any_of") {
            auto children = condition_list(v, where, key, depth);
            if (children.empty()) return nullptr;
            if (key == "all_of") return std::make_unique<detail::AllOf>("all of", std::move(children));
            return std::make_unique<detail::AnyOf>("any of", std::move(children));
        }
        if (key == "not") {
            if (!v.IsMap()) {
                error(at(v), what + ": expected a mapping of conditions, got " + kind_of(v));
                return nullptr;
            }
            auto children = match_map(v, where, depth + 1);
            if (children.empty()) return nullptr;
            ConditionPtr inner = children.size() == 1 ? std::move(children.front())
                                                      : std::make_unique<detail::AllOf>("all of", std::move(children));
            return std::make_unique<detail::Not>("not", std::move(inner));
        }
        return nullptr;
    }

    bool known_intent(const std::string& name, const YAML::Node& at_node, const std::string& what) {
        if (std::find(options_.intents.begin(), options_.intents.end(), name) != options_.intents.end()) return true;
        std::string msg = what + ": unknown intent " + quote(name);
        if (auto s = config::did_you_mean(name, options_.intents)) msg += "; did you mean '" + *s + "'?";
        error(at(at_node), msg);
        return false;
    }

    ConditionPtr intent(const YAML::Node& v, const std::string& what) {
        std::vector<std::string> names;
        std::optional<double> min;
        const YAML::Node* names_node = &v;
        YAML::Node in_node;
        if (v.IsMap()) {
            bool has_in = false;
            for (auto& [k, x] : pairs(v, {"in", "min_confidence"}, what)) {
                if (k == "in") {
                    has_in = true;
                    in_node = x;
                    names_node = &in_node;
                } else {
                    min = real(x, what + ".min_confidence");
                    if (min && (*min < 0 || *min > 1)) {
                        error(at(x), what + ".min_confidence: must be within 0..1");
                        min.reset();
                    }
                }
            }
            if (!has_in) {
                error(at(v), what + ": 'in' (the intent names) is required");
                return nullptr;
            }
        }
        auto s = strings(*names_node, what);
        if (!s) return nullptr;
        bool ok = true;
        for (const std::string& name : *s) ok = known_intent(name, *names_node, what) && ok;
        if (!ok) return nullptr;
        names = *s;
        return detail::make_intent(std::move(names), min);
    }

    std::optional<unsigned> labels(const YAML::Node& v, const std::string& what) {
        auto s = strings(v, what);
        if (!s) return std::nullopt;
        unsigned mask = 0;
        for (const std::string& t : *s) {
            auto l = envelope::parse_sentiment_label(t);
            if (!l) {
                std::string msg = what + ": expected negative, neutral or positive, got " + quote(t);
                if (auto m = config::did_you_mean(t, {"negative", "neutral", "positive"})) msg += "; did you mean '" + *m + "'?";
                error(at(v), msg);
                return std::nullopt;
            }
            mask |= 1u << static_cast<unsigned>(*l);
        }
        return mask;
    }

    ConditionPtr sentiment(const YAML::Node& v, const std::string& what) {
        if (!v.IsMap()) {
            auto l = labels(v, what);
            return l ? detail::make_sentiment(*l, std::nullopt, std::nullopt) : nullptr;
        }
        unsigned mask = 0;
        std::optional<double> min, max;
        bool ok = true;
        for (auto& [k, x] : pairs(v, {"label", "min_score", "max_score"}, what)) {
            if (k == "label") {
                auto l = labels(x, what + ".label");
                if (l) mask = *l; else ok = false;
            } else {
                auto d = real(x, what + "." + k);
                if (!d) { ok = false; continue; }
                if (*d < -1 || *d > 1) {
                    error(at(x), what + "." + k + ": must be within -1..1");
                    ok = false;
                    continue;
                }
                (k == "min_score" ? min : max) = d;
            }
        }
        if (!ok) return nullptr;
        if (!mask && !min && !max) {
            error(at(v), what + ": give a label, min_score or max_score");
            return nullptr;
        }
        return detail::make_sentiment(mask, min, max);
    }

    ConditionPtr entity(const YAML::Node& v, const std::string& what) {
        if (v.IsScalar()) {
            auto s = scalar(v, what);
            return s ? detail::make_entity(*s, nullptr) : nullptr;
        }
        if (!v.IsMap()) {
            error(at(v), what + ": expected an entity type or a mapping with 'type' and 'value', got " + kind_of(v));
            return nullptr;
        }
        std::optional<std::string> type;
        std::unique_ptr<RE2> value;
        bool ok = true;
        for (auto& [k, x] : pairs(v, {"type", "value"}, what)) {
            if (k == "type") {
                type = scalar(x, what + ".type");
                ok = ok && type;
            } else if (auto s = scalar(x, what + ".value")) {
                value = regex(*s, x, what + ".value");
                ok = ok && value;
            } else {
                ok = false;
            }
        }
        if (!ok) return nullptr;
        if (!type && !value) {
            error(at(v), what + ": give 'type', 'value' or both");
            return nullptr;
        }
        return detail::make_entity(std::move(type), std::move(value));
    }

    ConditionPtr customer(const YAML::Node& v, const std::string& what) {
        if (!v.IsMap()) {
            error(at(v), what + ": expected a mapping of attribute names to tests, got " + kind_of(v));
            return nullptr;
        }
        std::vector<ConditionPtr> out;
        for (auto& [key, test] : pairs(v, {}, what)) {
            detail::AttributeTest t;
            const std::string w = what + "." + key;
            if (test.IsScalar()) {
                t.equals = test.Scalar();
            } else if (test.IsSequence()) {
                auto s = strings(test, w);
                if (!s) continue;
                t.in = *s;
            } else if (test.IsMap()) {
                bool ok = true;
                const std::size_t errors_before = errors_.size();
                for (auto& [op, x] : pairs(test, {"equals", "in", "not_in", "exists", "min", "max", "above", "below"}, w)) {
                    if (op == "equals") {
                        if (auto s = scalar(x, w + ".equals")) t.equals = *s; else ok = false;
                    } else if (op == "in" || op == "not_in") {
                        if (auto s = strings(x, w + "." + op)) (op == "in" ? t.in : t.not_in) = *s; else ok = false;
                    } else if (op == "exists") {
                        if (auto b = boolean(x, w + ".exists")) t.exists = *b; else ok = false;
                    } else {
                        auto d = real(x, w + "." + op);
                        if (!d) { ok = false; continue; }
                        (op == "min" ? t.min : op == "max" ? t.max : op == "above" ? t.above : t.below) = d;
                    }
                }
                if (!ok || errors_.size() != errors_before) continue;
                if (test.size() == 0) {
                    error(at(test), w + ": give a test (equals, in, not_in, exists, min, max, above, below)");
                    continue;
                }
            } else {
                error(at(test), w + ": expected a value, a list or a mapping of tests, got " + kind_of(test));
                continue;
            }
            out.push_back(detail::make_customer(key, std::move(t)));
        }
        if (out.empty()) return nullptr;
        if (out.size() == 1) return std::move(out.front());
        return std::make_unique<detail::AllOf>("all of", std::move(out));
    }

    const Calendar* find_calendar(const YAML::Node* n, const YAML::Node& where_node, const std::string& what) {
        if (!n) {
            if (impl_->calendars.size() == 1) return impl_->calendars.front().get();
            error(at(where_node), what + (impl_->calendars.empty() ? ": no calendars are defined"
                                                                    : ": name the calendar (more than one is defined)"));
            return nullptr;
        }
        auto s = scalar(*n, what + ".calendar");
        if (!s) return nullptr;
        auto it = calendars_.find(*s);
        if (it == calendars_.end()) {
            std::string msg = what + ": unknown calendar " + quote(*s);
            if (auto m = config::did_you_mean(*s, calendar_names_)) msg += "; did you mean '" + *m + "'?";
            error(at(*n), msg);
            return nullptr;
        }
        return it->second;
    }

    std::optional<bool> customer_zone(const YAML::Node& x, const std::string& what) {
        auto s = scalar(x, what);
        if (!s) return std::nullopt;
        if (*s == "customer") return true;
        if (*s == "team") return false;
        error(at(x), what + ": expected customer or team, got " + quote(*s));
        return std::nullopt;
    }

    ConditionPtr business_hours(const YAML::Node& v, const std::string& what) {
        // business_hours: inside | outside, or {calendar, is, zone}
        std::optional<std::string> is;
        YAML::Node cal_node;
        bool has_cal = false, customer = false, ok = true;
        if (v.IsScalar()) {
            is = v.Scalar();
        } else if (v.IsMap()) {
            for (auto& [k, x] : pairs(v, {"calendar", "is", "zone"}, what)) {
                if (k == "calendar") {
                    cal_node = x;
                    has_cal = true;
                } else if (k == "is") {
                    is = scalar(x, what + ".is");
                    ok = ok && is;
                } else if (auto z = customer_zone(x, what + ".zone")) {
                    customer = *z;
                } else {
                    ok = false;
                }
            }
        } else {
            error(at(v), what + ": expected inside, outside or a mapping with 'calendar', 'is' and 'zone', got " + kind_of(v));
            return nullptr;
        }
        if (!ok) return nullptr;
        if (!is || (*is != "inside" && *is != "outside")) {
            error(at(v), what + ": expected 'inside' or 'outside'" + (is ? ", got " + quote(*is) : std::string()));
            return nullptr;
        }
        const Calendar* c = find_calendar(has_cal ? &cal_node : nullptr, v, what);
        return c ? detail::make_business_hours(c, *is == "inside", customer) : nullptr;
    }

    ConditionPtr time_of_day(const YAML::Node& v, const std::string& what) {
        if (!v.IsMap()) {
            error(at(v), what + ": expected a mapping with 'between' (e.g. '22:00-07:00'), 'days' and 'zone', got " + kind_of(v));
            return nullptr;
        }
        std::optional<OpenInterval> window;
        unsigned mask = 0;
        detail::ZoneChoice choice = detail::ZoneChoice::team;
        cctz::time_zone fixed;
        std::string zone_name = "the team's time zone";
        bool ok = true;
        for (auto& [k, x] : pairs(v, {"between", "days", "zone"}, what)) {
            if (k == "between") {
                auto s = scalar(x, what + ".between");
                if (s) window = interval(*s, x, what + ".between");
                ok = ok && window;
                if (window && window->start == window->end) {
                    error(at(x), what + ".between: an empty window");
                    ok = false;
                }
            } else if (k == "days") {
                auto s = strings(x, what + ".days");
                if (!s) { ok = false; continue; }
                for (const std::string& d : *s) {
                    if (auto m = days(d, x, what + ".days")) mask |= *m; else ok = false;
                }
            } else {
                auto s = scalar(x, what + ".zone");
                if (!s) { ok = false; continue; }
                if (*s == "customer") {
                    choice = detail::ZoneChoice::customer;
                    zone_name = "the customer's time zone";
                } else if (*s == "team") {
                    choice = detail::ZoneChoice::team;
                } else if (auto tz = zone(x, what + ".zone")) {
                    choice = detail::ZoneChoice::fixed;
                    fixed = *tz;
                    zone_name = *s;
                } else {
                    ok = false;
                }
            }
        }
        if (!ok) return nullptr;
        if (!window) {
            error(at(v), what + ": 'between' is required");
            return nullptr;
        }
        return detail::make_time_of_day(window->start, window->end, mask, choice, fixed, zone_name);
    }

    std::string file_;
    const LoadOptions& options_;
    Router::Impl* impl_ = nullptr;
    std::vector<Diagnostic> errors_;
    std::vector<Diagnostic> warnings_;
    std::size_t nodes_ = 0;
    std::string team_zone_name_ = "UTC";
    std::map<std::string, const Calendar*, std::less<>> calendars_;
    std::vector<std::string> calendar_names_;
    bool ai_draft_ = false;
};

}  // namespace

LoadResult Router::load_string(std::string_view yaml, const std::string& display_name, const LoadOptions& options) {
    return Parser(display_name, options).run(std::string(yaml));
}

LoadResult Router::load_file(const std::string& path, const LoadOptions& options) {
    config::FileContent content = config::read_text_file(path, kMaxRulesFile);
    if (!content.text) {
        LoadResult r;
        r.errors.push_back(Diagnostic{path, {}, std::string("cannot read: ") + std::strerror(content.error)});
        return r;
    }
    return load_string(*content.text, path, options);
}

}  // namespace omnibus::pipeline::route
