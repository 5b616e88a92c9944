// Event ids: UUIDv7 (RFC 9562), time-ordered, unique across threads and instances.
//
// Thread-safety: new_id() may be called from any thread. Within one process ids
// are strictly increasing in the order new_id() returns them (one shared atomic
// clock+counter); across instances they are unique by 62 random bits and
// ordered to the millisecond. Sorting the strings sorts by time.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "envelope/timestamp.h"

namespace omnibus::envelope {

inline constexpr std::size_t kIdLength = 36;  // 8-4-4-4-12 lowercase hex

// Writes exactly kIdLength chars (no NUL).
void new_id(char* out);
std::string new_id();

// The millisecond timestamp inside a UUIDv7, or nullopt if `id` is not one.
std::optional<Timestamp> id_time(std::string_view id);

}  // namespace omnibus::envelope
