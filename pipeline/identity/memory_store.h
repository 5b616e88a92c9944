// MemoryStore: identity::Store on two hash maps, for tests and benchmarks of the state
// machine. Customers are kept encoded, as the persistent store keeps them, so a test also
// covers the round trip.
#pragma once

#include <string>
#include <unordered_map>

#include "pipeline/identity/identity.h"

namespace omnibus::pipeline::identity {

class MemoryStore final : public Store {
public:
    std::optional<std::string> customer_of(std::string_view identity) override {
        auto it = identities_.find(std::string(identity));
        return it == identities_.end() ? std::nullopt : std::optional<std::string>(it->second);
    }
    std::optional<Customer> customer(std::string_view id) override {
        auto it = customers_.find(std::string(id));
        return it == customers_.end() ? std::nullopt : decode_customer(it->second);
    }
    void put_identity(std::string_view identity, std::string_view customer_id) override {
        identities_[std::string(identity)] = std::string(customer_id);
    }
    void erase_identity(std::string_view identity) override { identities_.erase(std::string(identity)); }
    void put_customer(const Customer& c) override { customers_[c.id] = encode(c); }
    void erase_customer(std::string_view id) override { customers_.erase(std::string(id)); }

    const std::unordered_map<std::string, std::string>& identities() const { return identities_; }
    const std::unordered_map<std::string, std::string>& customers() const { return customers_; }

private:
    std::unordered_map<std::string, std::string> identities_;  // identity → customer id
    std::unordered_map<std::string, std::string> customers_;   // id → encoded Customer
};

}  // namespace omnibus::pipeline::identity
