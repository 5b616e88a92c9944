// Customer identity: identity strings, the requests on the omnibus.identity log and the
// deterministic state machine every instance runs over that log.
//
// How instances agree (docs/pipeline.md has the whole story):
//   - A change of who-is-who is never written to a local store directly. It is appended as a
//     Request to the single partition of omnibus.identity: `observe` (a message showed these
//     identities together), `link` / `unlink` (admin API), `erase` (right to erasure).
//   - Every instance reads the whole log in order and runs apply() on each request, against
//     its own store. apply() depends only on the request, its log offset and the store, so
//     every instance ends in the same state: the same identity maps to the same customer id.
//   - Concurrent first contacts on two instances both append an `observe` proposing a new
//     customer id; the log orders them, the first creates the customer and the second finds
//     the identity taken and joins it. Nobody coordinates; nobody ends up with two customers.
//   - Two customers that turn out to be one are merged: the one created at the lower log
//     offset survives, the other becomes an alias (lookups of it answer the survivor).
//   - Records are keyed "r:<request id>", unique, so log compaction keeps every request until
//     an erasure tombstones the ones that named the erased customer's identities; a replay of
//     the compacted log still yields the same state for everyone else. The erase request
//     itself stays. Compaction must not run ahead of a live instance (the topic's
//     min.compaction.lag.ms); an instance whose store is older than that rebuilds it.
//
// Thread-safety: the functions here are pure or work on the Store they are given; a Store is
// used by one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/result.h"

namespace omnibus::pipeline::identity {

// ---- identity strings ---------------------------------------------------------------------

// "whatsapp:15551234567" → "whatsapp"; "" when `identity` is not `kind:value`.
std::string_view kind_of(std::string_view identity);

// Longest identity string accepted anywhere (bytes).
inline constexpr std::size_t kMaxIdentityBytes = 320;

// A checked identity string: kind [a-z0-9_-]+, a value of printable UTF-8 without spaces,
// at most kMaxIdentityBytes in all. Error says what is wrong.
envelope::Status check_identity(std::string_view identity);

struct EmailRules {
    bool lowercase_local_part = false;  // RFC 5321 says the local part is case-sensitive
    bool fold_gmail = false;            // gmail.com / googlemail.com: drop dots and +tags
};

// "  Ana.Silva@Example.COM " → "Ana.Silva@example.com" (trimmed, domain lower-cased, and the
// rules). nullopt when it is not one address: no '@', empty local part or domain, spaces or
// control characters inside, a domain without a dot, over 254 bytes.
std::optional<std::string> normalize_email(std::string_view address, const EmailRules& rules = {});

// ---- requests on the identity log ---------------------------------------------------------

enum class Op : std::uint8_t { observe, link, unlink, erase, attributes };

// Customer attributes (routing reads them: "tier" → "vip", "lifetime_value" → "2500"): at most
// kMaxAttributes per customer, names of [a-z0-9_] (1..64), values of UTF-8 up to 256 bytes.
inline constexpr std::size_t kMaxAttributes = 32;
std::string_view op_name(Op op);

struct Request {
    Op op = Op::observe;
    std::string id;        // UUIDv7; the record key is request_key(id)
    std::string customer;  // observe: the id proposed for a new customer; else: the target
    // observe: the message's channel identity first, then the identities that may link
    // automatically; link / unlink: exactly one; erase: none.
    std::vector<std::string> identities;
    std::int64_t at_ms = 0;  // when it was made (ms since the epoch)
    std::string origin;      // who asked: an instance id, "admin"; for logs and events
    // attributes: the values to set; nullopt removes the attribute. Other ops: empty.
    std::map<std::string, std::optional<std::string>> attributes;

    friend bool operator==(const Request&, const Request&) = default;
};

std::string request_key(std::string_view request_id);  // "r:<id>"
std::string encode(const Request& r);                 // one JSON object
// Checks everything apply() relies on: op, ids, identity strings, counts.
envelope::Result<Request> decode_request(std::string_view json);

// ---- state --------------------------------------------------------------------------------

inline constexpr std::size_t kMaxIdentitiesPerCustomer = 1000;
inline constexpr std::size_t kMaxRequestsPerCustomer = 100000;

struct Customer {
    std::string id;
    std::int64_t created_seq = 0;  // log offset of the request that created it: lower = older
    std::int64_t created_ms = 0;
    std::optional<std::string> merged_into;  // set on an alias: the survivor
    std::vector<std::string> identities;     // survivor only, in the order they were linked
    std::vector<std::string> aliases;        // customers merged into this one
    // Ids of the requests that named this customer or its identities: an erasure tombstones
    // their records on the log so that compaction removes the personal data in them.
    std::vector<std::string> requests;
    std::map<std::string, std::string> attributes;  // survivor only; a merge keeps the survivor's

    friend bool operator==(const Customer&, const Customer&) = default;
};

std::string encode(const Customer& c);
std::optional<Customer> decode_customer(std::string_view json);

// What apply() reads and writes. Reads see the writes made before them (one apply() may
// read what it wrote). The caller commits the writes with the log offset atomically.
class Store {
public:
    virtual ~Store() = default;
    virtual std::optional<std::string> customer_of(std::string_view identity) = 0;
    virtual std::optional<Customer> customer(std::string_view id) = 0;
    virtual void put_identity(std::string_view identity, std::string_view customer_id) = 0;
    virtual void erase_identity(std::string_view identity) = 0;
    virtual void put_customer(const Customer& c) = 0;
    virtual void erase_customer(std::string_view id) = 0;
};

// The survivor `id` stands for (itself when it was not merged); nullopt when unknown or erased.
std::optional<Customer> resolve(Store& store, std::string_view id);
// Merges repoint every alias at the survivor, so one hop is enough; a walk takes this many.
inline constexpr int kMaxMergeHops = 8;

struct Merge {
    std::string from;  // the younger customer, now an alias
    std::string into;  // the survivor
    friend bool operator==(const Merge&, const Merge&) = default;
};

struct Outcome {
    bool ok = true;
    std::string error;     // why not, when !ok (the request changed nothing)
    std::string customer;  // the customer the request concerns after it applied ("" if none)
    bool created = false;
    std::vector<Merge> merges;
    std::vector<std::string> linked;    // identities newly mapped to `customer`
    std::vector<std::string> unlinked;  // identities no longer mapped
    // erase: the customers (survivor and aliases) that are gone, and the requests whose
    // records must be tombstoned on the log (not the erase request itself, which stays).
    std::vector<std::string> erased_customers;
    std::vector<std::string> tombstone_requests;
};

// Applies request `r`, found at log offset `seq`, to `store`. Deterministic. A request that
// cannot apply (link to an unknown customer, a customer over kMaxIdentitiesPerCustomer, ...)
// changes nothing and says why.
Outcome apply(const Request& r, std::int64_t seq, Store& store);

}  // namespace omnibus::pipeline::identity
