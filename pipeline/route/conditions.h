// The compiled conditions of routing rules (internal to omnibus_route): each
// is resolved at load, evaluated without allocating, and can say why it
// matched or not for explain().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include "pipeline/route/calendar.h"
#include "pipeline/route/router.h"

namespace omnibus::pipeline::route::detail {

// What conditions look at, gathered once per message.
struct Input {
    const envelope::Envelope& env;
    const RouteContext& ctx;
    std::string_view language;  // the whole tag as on the envelope ("pt-BR"), empty when unknown
    Owner owner = Owner::ai;    // effective (idle expiry applied)
    std::uint32_t ai_turns = 0;
    const cctz::time_zone& team_zone;
};

class Condition {
public:
    explicit Condition(std::string text) : text_(std::move(text)) {}
    virtual ~Condition() = default;
    Condition(const Condition&) = delete;
    Condition& operator=(const Condition&) = delete;

    virtual bool eval(const Input& in) const = 0;
    // Appends this condition's trace (and its children's) and returns eval(in).
    virtual bool explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const;
    const std::string& text() const { return text_; }

protected:
    // Why eval(in) came out as it did, for explain(); allocation is fine here.
    virtual std::string why(const Input& in, bool matched) const = 0;

private:
    std::string text_;
};

using ConditionPtr = std::unique_ptr<Condition>;

// all_of / any_of / not: children are traced one level deeper.
class AllOf final : public Condition {
public:
    AllOf(std::string text, std::vector<ConditionPtr> children) : Condition(std::move(text)), children_(std::move(children)) {}
    bool eval(const Input& in) const override;
    bool explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const override;
    const std::vector<ConditionPtr>& children() const { return children_; }

protected:
    std::string why(const Input& in, bool matched) const override;

private:
    std::vector<ConditionPtr> children_;
};

class AnyOf final : public Condition {
public:
    AnyOf(std::string text, std::vector<ConditionPtr> children) : Condition(std::move(text)), children_(std::move(children)) {}
    bool eval(const Input& in) const override;
    bool explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const override;

protected:
    std::string why(const Input& in, bool matched) const override;

private:
    std::vector<ConditionPtr> children_;
};

class Not final : public Condition {
public:
    Not(std::string text, ConditionPtr child) : Condition(std::move(text)), child_(std::move(child)) {}
    bool eval(const Input& in) const override { return !child_->eval(in); }
    bool explain(const Input& in, int depth, std::vector<ConditionTrace>& out) const override;

protected:
    std::string why(const Input& in, bool matched) const override;

private:
    ConditionPtr child_;
};

// "[a, b, c]"
std::string list_text(const std::vector<std::string>& items);

}  // namespace omnibus::pipeline::route::detail

namespace omnibus::pipeline::route::detail {

enum class ZoneChoice : std::uint8_t { team, customer, fixed };

struct AttributeTest {
    std::optional<std::string> equals;
    std::vector<std::string> in;      // one of
    std::vector<std::string> not_in;  // none of
    std::optional<bool> exists;
    std::optional<double> min, max;   // inclusive, numeric
    std::optional<double> above, below;  // exclusive, numeric
};

ConditionPtr make_channel(bool by_name, std::vector<std::string> values);
ConditionPtr make_language(std::vector<std::string> tags);
ConditionPtr make_intent(std::vector<std::string> names, std::optional<double> min_confidence);
// labels: bit (1 << SentimentLabel); 0 = any label.
ConditionPtr make_sentiment(unsigned labels, std::optional<double> min_score, std::optional<double> max_score);
ConditionPtr make_entity(std::optional<std::string> type, std::unique_ptr<RE2> value);
ConditionPtr make_customer(std::string key, AttributeTest test);
// states: bit (1 << ConversationState)
ConditionPtr make_conversation(unsigned states);
ConditionPtr make_handoff(Owner owner);
ConditionPtr make_ai_turns(std::uint32_t at_least);
ConditionPtr make_business_hours(const Calendar* calendar, bool inside, bool customer_zone);
// [from, to) in minutes; from > to wraps midnight. days: bit (1 << weekday_index); 0 = every day.
ConditionPtr make_time_of_day(int from, int to, unsigned days, ZoneChoice zone, cctz::time_zone fixed,
                              std::string zone_name);
// keywords: case-insensitive substrings (any); regex: RE2 on the text (and subject).
ConditionPtr make_content(std::unique_ptr<RE2> re, std::string text);

std::string minutes_text(int minutes);  // "07:30"

}  // namespace omnibus::pipeline::route::detail
