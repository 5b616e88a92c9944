// The explanation of a routing decision as text and as JSON (router.h), for
// `omnibusd --explain-route` and the admin API.
#include "envelope/json.h"
#include "pipeline/route/router.h"

namespace omnibus::pipeline::route {

namespace json = omnibus::json;

std::string to_text(const Explanation& e) {
    std::string out;
    if (e.handoff) out += "handoff: " + *e.handoff + "\n";
    for (const RuleTrace& r : e.rules) {
        out += "rule " + r.rule;
        if (r.position.known()) out += " (line " + std::to_string(r.position.line) + ")";
        out += r.matched ? ": MATCH\n" : ": no match\n";
        if (r.conditions.empty()) out += "  (no conditions: matches every message)\n";
        for (const ConditionTrace& c : r.conditions) {
            out.append(static_cast<std::size_t>(2 + 2 * c.depth), ' ');
            out += c.matched ? "[x] " : "[ ] ";
            out += c.condition + ": " + c.why + "\n";
        }
    }
    const bool matched_rule = !e.rules.empty() && e.rules.back().matched;
    if (!e.handoff && !matched_rule) out += "no rule matched: the default route\n";
    out += "route: " + std::string(envelope::to_string(e.route.target)) + " rule=" + e.route.rule.value_or("") +
           " priority=" + std::to_string(e.route.priority);
    if (e.route.queue) out += " queue=" + *e.route.queue;
    if (!e.route.flags.empty()) {
        out += " flags=";
        for (std::size_t i = 0; i < e.route.flags.size(); ++i) out += (i ? "," : "") + e.route.flags[i];
    }
    return out + "\n";
}

std::string to_json(const Explanation& e) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    if (e.handoff) {
        json::write_key(w, "handoff");
        json::write_string(w, *e.handoff);
    }
    json::write_key(w, "rules");
    w.StartArray();
    for (const RuleTrace& r : e.rules) {
        w.StartObject();
        json::write_key(w, "rule");
        json::write_string(w, r.rule);
        if (r.position.known()) {
            json::write_key(w, "line");
            w.Int(r.position.line);
        }
        json::write_key(w, "matched");
        w.Bool(r.matched);
        json::write_key(w, "conditions");
        w.StartArray();
        for (const ConditionTrace& c : r.conditions) {
            w.StartObject();
            json::write_key(w, "depth");
            w.Int(c.depth);
            json::write_key(w, "condition");
            json::write_string(w, c.condition);
            json::write_key(w, "matched");
            w.Bool(c.matched);
            json::write_key(w, "why");
            json::write_string(w, c.why);
            w.EndObject();
        }
        w.EndArray();
        w.EndObject();
    }
    w.EndArray();
    json::write_key(w, "route");
    w.StartObject();
    json::write_key(w, "target");
    json::write_string(w, envelope::to_string(e.route.target));
    json::write_key(w, "rule");
    json::write_string(w, e.route.rule.value_or(""));
    json::write_key(w, "priority");
    w.Int(e.route.priority);
    if (e.route.queue) {
        json::write_key(w, "queue");
        json::write_string(w, *e.route.queue);
    }
    json::write_key(w, "flags");
    w.StartArray();
    for (const std::string& f : e.route.flags) json::write_string(w, f);
    w.EndArray();
    w.EndObject();
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

}  // namespace omnibus::pipeline::route
