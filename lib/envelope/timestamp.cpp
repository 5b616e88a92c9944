// RFC 3339 formatting and parsing without locale, time zone database or gmtime.
#include "envelope/timestamp.h"

#include <cstdint>

namespace omnibus::envelope {
namespace {

using std::chrono::milliseconds;

// Days since 1970-01-01 <-> proleptic Gregorian date (H. Hinnant's algorithms).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
    std::int64_t y;
    unsigned m, d;
};

constexpr Civil civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {y + (m <= 2), m, d};
}

constexpr std::int64_t kMinMs = days_from_civil(0, 1, 1) * 86400000LL;
constexpr std::int64_t kMaxMs = days_from_civil(10000, 1, 1) * 86400000LL - 1;

constexpr bool is_leap(std::int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
    constexpr unsigned k[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : k[m - 1];
}

inline void put2(char* p, unsigned v) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

inline bool digits(std::string_view s, std::size_t pos, std::size_t n, unsigned& out) {
    if (pos + n > s.size()) return false;
    unsigned v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        const unsigned c = static_cast<unsigned char>(s[i]) - '0';
        if (c > 9) return false;
        v = v * 10 + c;
    }
    out = v;
    return true;
}

}  // namespace

void format_rfc3339(Timestamp t, char* out) {
    std::int64_t ms = t.time_since_epoch().count();
    if (ms < kMinMs) ms = kMinMs;
    if (ms > kMaxMs) ms = kMaxMs;
    std::int64_t day = ms / 86400000;
    std::int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        --day;
    }
    const Civil c = civil_from_days(day);
    const auto y = static_cast<unsigned>(c.y);
    put2(out, y / 100);
    put2(out + 2, y % 100);
    out[4] = '-';
    put2(out + 5, c.m);
    out[7] = '-';
    put2(out + 8, c.d);
    out[10] = 'T';
    const auto r = static_cast<unsigned>(rem);
    put2(out + 11, r / 3600000);
    out[13] = ':';
    put2(out + 14, r / 60000 % 60);
    out[16] = ':';
    put2(out + 17, r / 1000 % 60);
    out[19] = '.';
    const unsigned frac = r % 1000;
    out[20] = static_cast<char>('0' + frac / 100);
    put2(out + 21, frac % 100);
    out[23] = 'Z';
}

std::string format_rfc3339(Timestamp t) {
    std::string s(kTimestampLength, '\0');
    format_rfc3339(t, s.data());
    return s;
}

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
    unsigned year, mon, mday, hour, min, sec;
    if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mon) || s[7] != '-' ||
        !digits(s, 8, 2, mday) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, hour) ||
        s[13] != ':' || !digits(s, 14, 2, min) || s[16] != ':' || !digits(s, 17, 2, sec))
        return std::nullopt;
    if (mon < 1 || mon > 12 || mday < 1 || mday > days_in_month(year, mon) || hour > 23 || min > 59 || sec > 60)
        return std::nullopt;

    std::size_t pos = 19;
    unsigned frac_ms = 0;
    if (s[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        unsigned scale = 100;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            frac_ms += static_cast<unsigned>(s[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == start || pos - start > 9) return std::nullopt;  // at most nanoseconds
    }
    if (pos >= s.size()) return std::nullopt;

    std::int64_t offset_min = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        unsigned oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om) ||
            oh > 23 || om > 59)
            return std::nullopt;
        offset_min = static_cast<std::int64_t>(oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;

    if (sec == 60) {  // a leap second: the last millisecond of :59
        sec = 59;
        frac_ms = 999;
    }
    std::int64_t ms = days_from_civil(year, mon, mday) * 86400000LL +
                      static_cast<std::int64_t>(hour * 3600 + min * 60 + sec) * 1000 + frac_ms - offset_min * 60000;
    if (ms < kMinMs || ms > kMaxMs) return std::nullopt;
    return Timestamp{milliseconds{ms}};
}

Timestamp now_ms() {
    return std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
}

}  // namespace omnibus::envelope
