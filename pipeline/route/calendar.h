// Business-hours calendars: weekly opening hours per day and holidays by date,
// in one time zone. Pure: the time is an argument.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

namespace omnibus::pipeline::route {

// Minutes since local midnight, [start, end); end may be 1440 (24:00).
struct OpenInterval {
    int start = 0;
    int end = 0;
};

struct Calendar {
    std::string name;
    std::string time_zone_name;
    cctz::time_zone zone;                            // the team's zone for this calendar
    std::array<std::vector<OpenInterval>, 7> week;   // index: 0 = Monday … 6 = Sunday; empty = closed
    std::vector<cctz::civil_day> holidays;           // sorted; closed all day

    // Open at `t` read in the calendar's own zone, or in `zone` (the customer's).
    bool open_at(std::chrono::system_clock::time_point t) const { return open_at(t, zone); }
    bool open_at(std::chrono::system_clock::time_point t, const cctz::time_zone& in_zone) const;
    bool is_holiday(cctz::civil_day d) const;
};

// 0 = Monday … 6 = Sunday.
int weekday_index(cctz::civil_day d);

}  // namespace omnibus::pipeline::route
