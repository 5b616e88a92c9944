// Business-hours calendars (calendar.h).
#include "pipeline/route/calendar.h"

#include <algorithm>

namespace omnibus::pipeline::route {

int weekday_index(cctz::civil_day d) {
    switch (cctz::get_weekday(d)) {
        case cctz::weekday::monday: return 0;
        case cctz::weekday::tuesday: return 1;
        case cctz::weekday::wednesday: return 2;
        case cctz::weekday::thursday: return 3;
        case cctz::weekday::friday: return 4;
        case cctz::weekday::saturday: return 5;
        case cctz::weekday::sunday: return 6;
    }
    return 0;
}

bool Calendar::is_holiday(cctz::civil_day d) const { return std::binary_search(holidays.begin(), holidays.end(), d); }

bool Calendar::open_at(std::chrono::system_clock::time_point t, const cctz::time_zone& in_zone) const {
    const cctz::civil_second local = cctz::convert(std::chrono::time_point_cast<cctz::seconds>(t), in_zone);
    const cctz::civil_day day(local);
    if (is_holiday(day)) return false;
    const int minute = local.hour() * 60 + local.minute();
    for (const OpenInterval& i : week[static_cast<std::size_t>(weekday_index(day))]) {
        if (minute >= i.start && minute < i.end) return true;
    }
    return false;
}

}  // namespace omnibus::pipeline::route
