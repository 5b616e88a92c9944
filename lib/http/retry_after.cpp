// Retry-After and HTTP-date parsing (see retry_after.h).
#include "http/retry_after.h"

#include <array>
#include <cstdint>

namespace omnibus::http {
namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

bool is_ows(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

template <size_t N>
int index_of(const std::array<std::string_view, N>& names, std::string_view word) {
    for (size_t i = 0; i < N; ++i)
        if (iequals(names[i], word)) return static_cast<int>(i);
    return -1;
}

// Reads the grammar of the three date forms left to right; every step fails on a mismatch.
class Cursor {
public:
    explicit Cursor(std::string_view s) : s_(s) {}

    bool at_end() const { return i_ == s_.size(); }
    bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }

    bool lit(char c) {
        if (!peek(c)) return false;
        ++i_;
        return true;
    }
    bool word(std::string_view& out) {
        size_t start = i_;
        while (i_ < s_.size() && is_alpha(s_[i_])) ++i_;
        out = s_.substr(start, i_ - start);
        return !out.empty();
    }
    // Exactly n digits.
    bool digits(int n, int& out) {
        out = 0;
        for (int k = 0; k < n; ++k, ++i_) {
            if (i_ >= s_.size() || !is_digit(s_[i_])) return false;
            out = out * 10 + (s_[i_] - '0');
        }
        return true;
    }
    bool month(int& out) {
        std::string_view w;
        if (!word(w)) return false;
        out = index_of(months, w) + 1;
        return out > 0;
    }
    bool gmt() {
        std::string_view w;
        return word(w) && iequals(w, "GMT");
    }
    // hh:mm:ss, 00:00:00 .. 23:59:60 (a leap second is accepted and counts as one more second).
    bool time_of_day(seconds& out) {
        int h = 0, m = 0, sec = 0;
        if (!digits(2, h) || !lit(':') || !digits(2, m) || !lit(':') || !digits(2, sec)) return false;
        if (h > 23 || m > 59 || sec > 60) return false;
        out = hours(h) + minutes(m) + seconds(sec);
        return true;
    }

private:
    std::string_view s_;
    size_t i_ = 0;
};

std::optional<sys_seconds> make_time(int y, int mon, int d, seconds tod) {
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mon)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    return sys_seconds(sys_days(ymd)) + tod;
}

// "06 Nov 1994 08:49:37 GMT", after "Sun, ".
std::optional<sys_seconds> imf_fixdate(Cursor& c) {
    int d = 0, mon = 0, y = 0;
    seconds tod{};
    if (!c.digits(2, d) || !c.lit(' ') || !c.month(mon) || !c.lit(' ') || !c.digits(4, y) || !c.lit(' ') ||
        !c.time_of_day(tod) || !c.lit(' ') || !c.gmt() || !c.at_end())
        return std::nullopt;
    return make_time(y, mon, d, tod);
}

// "06-Nov-94 08:49:37 GMT", after "Sunday, ".
std::optional<sys_seconds> rfc850_date(Cursor& c, system_clock::time_point now) {
    int d = 0, mon = 0, yy = 0;
    seconds tod{};
    if (!c.digits(2, d) || !c.lit('-') || !c.month(mon) || !c.lit('-') || !c.digits(2, yy) || !c.lit(' ') ||
        !c.time_of_day(tod) || !c.lit(' ') || !c.gmt() || !c.at_end())
        return std::nullopt;
    // RFC 9110 5.6.7: a two-digit year more than 50 years in the future is the most recent
    // past year with the same last two digits.
    int now_year = static_cast<int>(year_month_day{floor<days>(now)}.year());
    // Taken by whole years: the latest year ending in `yy` that is at most now + 50.
    int y = now_year - now_year % 100 + yy;
    if (y > now_year + 50) y -= 100;
    if (y + 100 <= now_year + 50) y += 100;
    return make_time(y, mon, d, tod);
}

// "Nov  6 08:49:37 1994", after "Sun ".
std::optional<sys_seconds> asctime_date(Cursor& c) {
    int mon = 0, d = 0, y = 0;
    seconds tod{};
    if (!c.month(mon) || !c.lit(' ')) return std::nullopt;
    if (c.lit(' ')) {
        if (!c.digits(1, d)) return std::nullopt;
    } else if (!c.digits(2, d)) {
        return std::nullopt;
    }
    if (!c.lit(' ') || !c.time_of_day(tod) || !c.lit(' ') || !c.digits(4, y) || !c.at_end()) return std::nullopt;
    return make_time(y, mon, d, tod);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

std::optional<sys_seconds> parse_http_date(std::string_view text, system_clock::time_point now) {
    Cursor c(trim(text));
    std::string_view day_name;
    if (!c.word(day_name)) return std::nullopt;
    if (c.lit(',')) {
        if (!c.lit(' ')) return std::nullopt;
        if (index_of(short_days, day_name) >= 0) return imf_fixdate(c);
        if (index_of(long_days, day_name) >= 0) return rfc850_date(c, now);
        return std::nullopt;
    }
    if (c.lit(' ') && index_of(short_days, day_name) >= 0) return asctime_date(c);
    return std::nullopt;
}

std::optional<seconds> parse_retry_after(std::string_view value, system_clock::time_point now) {
    value = trim(value);
    if (value.empty()) return std::nullopt;
    if (is_digit(value.front())) {
        int64_t n = 0;
        for (char ch : value) {
            if (!is_digit(ch)) return std::nullopt;
            if (n <= max_retry_after.count()) n = n * 10 + (ch - '0');  // past the cap, only validate
        }
        return seconds(n < max_retry_after.count() ? n : max_retry_after.count());
    }
    auto date = parse_http_date(value, now);
    if (!date) return std::nullopt;
    // In whole seconds: a date years ahead would overflow system_clock's nanoseconds. With
    // now = s + f (0 <= f < 1 s), ceil(date - now) is date - s, and date <= now iff that is <= 0.
    seconds wait = *date - floor<seconds>(now);
    if (wait <= seconds(0)) return seconds(0);
    return wait < max_retry_after ? wait : max_retry_after;
}

}  // namespace omnibus::http
