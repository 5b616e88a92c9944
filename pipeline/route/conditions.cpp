// The compiled routing conditions (conditions.h): eval() on the hot path,
// why() for explain().
#include "pipeline/route/conditions.h"

#include <charconv>
#include <cstdio>

#include "envelope/json.h"

namespace omnibus::pipeline::route::detail {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = lower(a[i]), y = lower(b[i]);
        if (x == '_') x = '-';
        if (y == '_') y = '-';
        if (x != y) return false;
    }
    return true;
}

bool contains(const std::vector<std::string>& set, std::string_view v) {
    for (const std::string& s : set) {
        if (s == v) return true;
    }
    return false;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string number_text(double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : std::string("?");
}

std::optional<double> as_number(std::string_view s) {
    double v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

const char* const kDays[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

}  // namespace

std::string list_text(const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += items[i];
    }
    return out + "]";
}

std::string minutes_text(int minutes) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", (minutes / 60) % 100, minutes % 60);
    return buf;
}

bool Condition::explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const {
    const bool matched = eval(in);
    out.push_back(ConditionTrace{depth, text_, matched, why(in, matched)});
    return matched;
}

// ---- combinators ----------------------------------------------------------------

bool AllOf::eval(const Input& in) const {
    for (const auto& c : children_) {
        if (!c->eval(in)) return false;
    }
    return true;
}

bool AllOf::explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const {
    const std::size_t at = out.size();
    out.push_back(ConditionTrace{depth, text(), false, {}});
    std::size_t failed = 0;
    for (const auto& c : children_) {
        if (!c->explain(in, depth + 1, out)) ++failed;
    }
    out[at].matched = failed == 0;
    out[at].why = failed == 0 ? "every condition matched"
                              : std::to_string(failed) + " of " + std::to_string(children_.size()) + " did not match";
    return failed == 0;
}

std::string AllOf::why(const Input&, bool matched) const { return matched ? "every condition matched" : "one did not match"; }

bool AnyOf::eval(const Input& in) const {
    for (const auto& c : children_) {
        if (c->eval(in)) return true;
    }
    return false;
}

bool AnyOf::explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const {
    const std::size_t at = out.size();
    out.push_back(ConditionTrace{depth, text(), false, {}});
    std::size_t matched = 0;
    for (const auto& c : children_) {
        if (c->explain(in, depth + 1, out)) ++matched;
    }
    out[at].matched = matched > 0;
    out[at].why = matched > 0 ? std::to_string(matched) + " of " + std::to_string(children_.size()) + " matched"
                              : "none matched";
    return matched > 0;
}

std::string AnyOf::why(const Input&, bool matched) const { return matched ? "one matched" : "none matched"; }

bool Not::explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const {
    const std::size_t at = out.size();
    out.push_back(ConditionTrace{depth, text(), false, {}});
    const bool inner = child_->explain(in, depth + 1, out);
    out[at].matched = !inner;
    out[at].why = inner ? "the condition inside matched" : "the condition inside did not match";
    return !inner;
}

std::string Not::why(const Input&, bool matched) const {
    return matched ? "the condition inside did not match" : "the condition inside matched";
}

// ---- leaves ----------------------------------------------------------------------

namespace {

class ChannelCond final : public Condition {
public:
    ChannelCond(bool by_name, std::vector<std::string> values)
        : Condition(std::string(by_name ? "channel name" : "channel type") + " in " + list_text(values)),
          by_name_(by_name), values_(std::move(values)) {}
    bool eval(const Input& in) const override { return contains(values_, field(in)); }

protected:
    std::string why(const Input& in, bool matched) const override {
        return std::string(by_name_ ? "channel name " : "channel type ") + quoted(field(in)) +
               (matched ? " is one of them" : " is not one of them");
    }

private:
    std::string_view field(const Input& in) const { return by_name_ ? in.env.channel.name : in.env.channel.type; }
    bool by_name_;
    std::vector<std::string> values_;
};

// A tag without a region matches any region of its language ("pt" matches
// "pt-BR"); one with a region matches only that ("pt-BR"). Case and '_'/'-'
// do not matter.
class LanguageCond final : public Condition {
public:
    explicit LanguageCond(std::vector<std::string> tags) : Condition("language in " + list_text(tags)), tags_(std::move(tags)) {}
    bool eval(const Input& in) const override {
        if (in.language.empty()) return false;
        const std::string_view primary = in.language.substr(0, in.language.find_first_of("-_"));
        for (const std::string& t : tags_) {
            const bool has_region = t.find_first_of("-_") != std::string::npos;
            if (iequals(t, has_region ? in.language : primary)) return true;
        }
        return false;
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        if (in.language.empty()) return "the message has no language";
        return "language " + std::string(in.language) + (matched ? " is one of them" : " is not one of them");
    }

private:
    std::vector<std::string> tags_;
};

class IntentCond final : public Condition {
public:
    IntentCond(std::vector<std::string> names, std::optional<double> min_confidence)
        : Condition("intent in " + list_text(names) +
                    (min_confidence ? " with confidence >= " + number_text(*min_confidence) : std::string())),
          names_(std::move(names)), min_(min_confidence) {}
    bool eval(const Input& in) const override {
        const auto& intent = in.env.intent;
        if (!intent || !contains(names_, intent->name)) return false;
        return !min_ || intent->confidence >= *min_;
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        const auto& intent = in.env.intent;
        if (!intent) return "the message has no intent";
        std::string s = "intent " + intent->name + " (" + number_text(intent->confidence) + ")";
        if (!contains(names_, intent->name)) return s + " not in " + list_text(names_);
        if (!matched) return s + " below confidence " + number_text(*min_);
        return s + " matches";
    }

private:
    std::vector<std::string> names_;
    std::optional<double> min_;
};

std::string labels_text(unsigned labels) {
    std::vector<std::string> names;
    for (auto l : {envelope::SentimentLabel::negative, envelope::SentimentLabel::neutral, envelope::SentimentLabel::positive}) {
        if (labels & (1u << static_cast<unsigned>(l))) names.emplace_back(envelope::to_string(l));
    }
    return list_text(names);
}

class SentimentCond final : public Condition {
public:
    SentimentCond(unsigned labels, std::optional<double> min_score, std::optional<double> max_score)
        : Condition(text_of(labels, min_score, max_score)), labels_(labels), min_(min_score), max_(max_score) {}
    bool eval(const Input& in) const override {
        const auto& s = in.env.sentiment;
        if (!s) return false;
        if (labels_ && !(labels_ & (1u << static_cast<unsigned>(s->label)))) return false;
        if (min_ && !(s->score >= *min_)) return false;
        if (max_ && !(s->score <= *max_)) return false;
        return true;
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        const auto& s = in.env.sentiment;
        if (!s) return "the message has no sentiment";
        return "sentiment " + std::string(envelope::to_string(s->label)) + " score " + number_text(s->score) +
               (matched ? " matches" : " does not match");
    }

private:
    static std::string text_of(unsigned labels, std::optional<double> min, std::optional<double> max) {
        std::string t = "sentiment";
        if (labels) t += " in " + labels_text(labels);
        if (min) t += " score >= " + number_text(*min);
        if (max) t += std::string(min ? " and" : "") + " score <= " + number_text(*max);
        return t;
    }
    unsigned labels_;
    std::optional<double> min_, max_;
};

class EntityCond final : public Condition {
public:
    EntityCond(std::optional<std::string> type, std::unique_ptr<RE2> value)
        : Condition("has entity" + (type ? " " + *type : std::string()) +
                    (value ? " with value matching /" + value->pattern() + "/" : std::string())),
          type_(std::move(type)), value_(std::move(value)) {}
    bool eval(const Input& in) const override {
        for (const auto& e : in.env.entities) {
            if (type_ && e.type != *type_) continue;
            if (value_ && !RE2::PartialMatch(e.value, *value_)) continue;
            return true;
        }
        return false;
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        if (in.env.entities.empty()) return "the message has no entities";
        std::vector<std::string> seen;
        for (const auto& e : in.env.entities) seen.push_back(e.type + "=" + e.value);
        return std::string(matched ? "found among " : "not among ") + list_text(seen);
    }

private:
    std::optional<std::string> type_;
    std::unique_ptr<RE2> value_;
};

class CustomerCond final : public Condition {
public:
    CustomerCond(std::string key, AttributeTest test) : Condition(text_of(key, test)), key_(std::move(key)), t_(std::move(test)) {}
    bool eval(const Input& in) const override {
        const std::string* v = value(in);
        if (t_.exists) return (v != nullptr) == *t_.exists && rest(v);
        if (!v) return false;
        return rest(v);
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        const std::string* v = value(in);
        if (!v) return "customer has no " + key_;
        std::string s = "customer " + key_ + " is " + quoted(*v);
        if (numeric() && !as_number(*v)) return s + ", not a number";
        return s + (matched ? "" : ", which does not match");
    }

private:
    const std::string* value(const Input& in) const {
        if (!in.ctx.customer) return nullptr;
        auto it = in.ctx.customer->find(key_);
        return it == in.ctx.customer->end() ? nullptr : &it->second;
    }
    bool numeric() const { return t_.min || t_.max || t_.above || t_.below; }
    bool rest(const std::string* v) const {
        if (!v) return !t_.equals && t_.in.empty() && !numeric();  // exists: false alone
        if (t_.equals && *v != *t_.equals) return false;
        if (!t_.in.empty() && !contains(t_.in, *v)) return false;
        if (!t_.not_in.empty() && contains(t_.not_in, *v)) return false;
        if (numeric()) {
            const auto n = as_number(*v);
            if (!n) return false;
            if (t_.min && !(*n >= *t_.min)) return false;
            if (t_.max && !(*n <= *t_.max)) return false;
            if (t_.above && !(*n > *t_.above)) return false;
            if (t_.below && !(*n < *t_.below)) return false;
        }
        return true;
    }
    static std::string text_of(const std::string& key, const AttributeTest& t) {
        std::string s = "customer " + key;
        std::vector<std::string> parts;
        if (t.exists) parts.push_back(*t.exists ? "exists" : "is absent");
        if (t.equals) parts.push_back("= " + quoted(*t.equals));
        if (!t.in.empty()) parts.push_back("in " + list_text(t.in));
        if (!t.not_in.empty()) parts.push_back("not in " + list_text(t.not_in));
        if (t.min) parts.push_back(">= " + number_text(*t.min));
        if (t.above) parts.push_back("> " + number_text(*t.above));
        if (t.max) parts.push_back("<= " + number_text(*t.max));
        if (t.below) parts.push_back("< " + number_text(*t.below));
        for (std::size_t i = 0; i < parts.size(); ++i) s += (i ? " and " : " ") + parts[i];
        return s;
    }
    std::string key_;
    AttributeTest t_;
};

std::string states_text(unsigned states) {
    std::vector<std::string> names;
    for (auto s : {ConversationState::new_, ConversationState::open, ConversationState::reopened}) {
        if (states & (1u << static_cast<unsigned>(s))) names.emplace_back(to_string(s));
    }
    return list_text(names);
}

class ConversationCond final : public Condition {
public:
    explicit ConversationCond(unsigned states) : Condition("conversation in " + states_text(states)), states_(states) {}
    bool eval(const Input& in) const override { return states_ & (1u << static_cast<unsigned>(in.ctx.conversation)); }

protected:
    std::string why(const Input& in, bool matched) const override {
        return "conversation is " + std::string(to_string(in.ctx.conversation)) + (matched ? "" : ", not one of them");
    }

private:
    unsigned states_;
};

class HandoffCond final : public Condition {
public:
    explicit HandoffCond(Owner owner) : Condition("handoff owner is " + std::string(to_string(owner))), owner_(owner) {}
    bool eval(const Input& in) const override { return in.owner == owner_; }

protected:
    std::string why(const Input& in, bool) const override { return "owner is " + std::string(to_string(in.owner)); }

private:
    Owner owner_;
};

class AiTurnsCond final : public Condition {
public:
    explicit AiTurnsCond(std::uint32_t n) : Condition("ai turns without resolution >= " + std::to_string(n)), n_(n) {}
    bool eval(const Input& in) const override { return in.ai_turns >= n_; }

protected:
    std::string why(const Input& in, bool) const override { return std::to_string(in.ai_turns) + " ai turns"; }

private:
    std::uint32_t n_;
};

const cctz::time_zone* zone_for(const Input& in, bool customer, const cctz::time_zone& team) {
    if (customer && in.ctx.customer_time_zone) return &*in.ctx.customer_time_zone;
    return &team;
}

std::string local_text(std::chrono::system_clock::time_point t, const cctz::time_zone& z) {
    return cctz::format("%a %Y-%m-%d %H:%M %Z", t, z);
}

class BusinessHoursCond final : public Condition {
public:
    BusinessHoursCond(const Calendar* c, bool inside, bool customer_zone)
        : Condition(std::string(inside ? "inside" : "outside") + " business hours of " + c->name +
                    (customer_zone ? " in the customer's time zone" : " (" + c->time_zone_name + ")")),
          cal_(c), inside_(inside), customer_(customer_zone) {}
    bool eval(const Input& in) const override {
        return cal_->open_at(in.ctx.now, *zone_for(in, customer_, cal_->zone)) == inside_;
    }

protected:
    std::string why(const Input& in, bool) const override {
        const cctz::time_zone& z = *zone_for(in, customer_, cal_->zone);
        std::string s = local_text(in.ctx.now, z);
        if (customer_ && !in.ctx.customer_time_zone) s += " (customer's zone unknown: " + cal_->time_zone_name + ")";
        const cctz::civil_day day(cctz::convert(std::chrono::time_point_cast<cctz::seconds>(in.ctx.now), z));
        if (cal_->is_holiday(day)) return s + " is a holiday";
        return s + (cal_->open_at(in.ctx.now, z) ? " is within opening hours" : " is outside opening hours");
    }

private:
    const Calendar* cal_;
    bool inside_;
    bool customer_;
};

std::string days_text(unsigned days) {
    std::vector<std::string> names;
    for (int i = 0; i < 7; ++i) {
        if (days & (1u << i)) names.emplace_back(kDays[i]);
    }
    return list_text(names);
}

class TimeOfDayCond final : public Condition {
public:
    TimeOfDayCond(int from, int to, unsigned days, ZoneChoice zone, cctz::time_zone fixed, std::string zone_name)
        : Condition("time " + minutes_text(from) + "-" + minutes_text(to) + (days ? " on " + days_text(days) : "") +
                    " in " + zone_name),
          from_(from), to_(to), days_(days), zone_(zone), fixed_(fixed) {}
    bool eval(const Input& in) const override {
        const cctz::civil_second local =
            cctz::convert(std::chrono::time_point_cast<cctz::seconds>(in.ctx.now), zone(in));
        const int m = local.hour() * 60 + local.minute();
        // A window across midnight belongs to the day it starts on.
        cctz::civil_day day(local);
        bool in_window = false;
        if (from_ <= to_) {
            in_window = m >= from_ && m < to_;
        } else if (m >= from_) {
            in_window = true;
        } else if (m < to_) {
            in_window = true;
            day -= 1;
        }
        if (!in_window) return false;
        return days_ == 0 || (days_ & (1u << weekday_index(day)));
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        std::string s = local_text(in.ctx.now, zone(in));
        if (zone_ == ZoneChoice::customer && !in.ctx.customer_time_zone) s += " (customer's zone unknown: team's)";
        return s + (matched ? " is in the window" : " is not in the window");
    }

private:
    const cctz::time_zone& zone(const Input& in) const {
        if (zone_ == ZoneChoice::fixed) return fixed_;
        return *zone_for(in, zone_ == ZoneChoice::customer, in.team_zone);
    }
    int from_, to_;
    unsigned days_;
    ZoneChoice zone_;
    cctz::time_zone fixed_;
};

class ContentCond final : public Condition {
public:
    ContentCond(std::unique_ptr<RE2> re, std::string text) : Condition(std::move(text)), re_(std::move(re)) {}
    bool eval(const Input& in) const override {
        const auto& c = in.env.content;
        if (c.text && RE2::PartialMatch(*c.text, *re_)) return true;
        return c.subject && RE2::PartialMatch(*c.subject, *re_);
    }

protected:
    std::string why(const Input& in, bool matched) const override {
        const auto& c = in.env.content;
        if (!c.text && !c.subject) return "the message has no text";
        if (!matched) return "not found in the text";
        re2::StringPiece found;
        const std::string& where = (c.text && RE2::PartialMatch(*c.text, *re_)) ? *c.text : *c.subject;
        // The match itself, for the reader (a short excerpt, never the whole text).
        re2::StringPiece input(where);
        if (re_->Match(input, 0, input.size(), RE2::UNANCHORED, &found, 1)) {
            return "found '" + json::excerpt(std::string_view(found.data(), found.size()), 60) + "'";
        }
        return "found";
    }

private:
    std::unique_ptr<RE2> re_;
};

}  // namespace

ConditionPtr make_channel(bool by_name, std::vector<std::string> values) {
    return std::make_unique<ChannelCond>(by_name, std::move(values));
}
ConditionPtr make_language(std::vector<std::string> tags) { return std::make_unique<LanguageCond>(std::move(tags)); }
ConditionPtr make_intent(std::vector<std::string> names, std::optional<double> min_confidence) {
    return std::make_unique<IntentCond>(std::move(names), min_confidence);
}
ConditionPtr make_sentiment(unsigned labels, std::optional<double> min_score, std::optional<double> max_score) {
    return std::make_unique<SentimentCond>(labels, min_score, max_score);
}
ConditionPtr make_entity(std::optional<std::string> type, std::unique_ptr<RE2> value) {
    return std::make_unique<EntityCond>(std::move(type), std::move(value));
}
ConditionPtr make_customer(std::string key, AttributeTest test) {
    return std::make_unique<CustomerCond>(std::move(key), std::move(test));
}
ConditionPtr make_conversation(unsigned states) { return std::make_unique<ConversationCond>(states); }
ConditionPtr make_handoff(Owner owner) { return std::make_unique<HandoffCond>(owner); }
ConditionPtr make_ai_turns(std::uint32_t at_least) { return std::make_unique<AiTurnsCond>(at_least); }
ConditionPtr make_business_hours(const Calendar* calendar, bool inside, bool customer_zone) {
    return std::make_unique<BusinessHoursCond>(calendar, inside, customer_zone);
}
ConditionPtr make_time_of_day(int from, int to, unsigned days, ZoneChoice zone, cctz::time_zone fixed,
                              std::string zone_name) {
    return std::make_unique<TimeOfDayCond>(from, to, days, zone, fixed, std::move(zone_name));
}
ConditionPtr make_content(std::unique_ptr<RE2> re, std::string text) {
    return std::make_unique<ContentCond>(std::move(re), std::move(text));
}

}  // namespace omnibus::pipeline::route::detail
