// A local stand-in for the WhatsApp Cloud API messages endpoint, for tests:
// `POST /<version>/<phone_number_id>/messages` on 127.0.0.1 (cpp-httplib).
//
// It checks what the real endpoint checks and answers in its documented
// shapes:
//   - the path (unknown object: 400, GraphMethodException code 100);
//   - `Authorization: Bearer <token>` (missing or wrong: 401, OAuthException
//     code 190 "Invalid OAuth access token");
//   - a JSON body with messaging_product "whatsapp", a digits-only `to`, a
//     `type` with its object (text.body 1..4096 characters; media with
//     exactly one of link/id; template name and language.code), else 400
//     code 100 "(#100) Invalid parameter" with error_data.details;
//   - then either the scripted answer queued with fail_next(), or success:
//     {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
//      "messages":[{"id":"wamid.<n>"}]}.
// Every request that passed the checks is recorded (accepted or not).
#pragma once

#include <httplib.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace omnibus::test {

class FakeGraphApi {
public:
    struct Answer {
        int status = 200;
        std::string body;
        std::vector<std::pair<std::string, std::string>> headers;
        std::chrono::milliseconds delay{0};  // before answering (timeouts)
    };
    struct Received {
        std::string body;
        std::string to;
        std::string type;
        std::string callback_data;
        std::string text;  // text.body, a media caption, or the template name
        int status = 0;    // what it was answered
    };

    FakeGraphApi(std::string version, std::string phone_number_id, std::string token)
        : path_("/" + version + "/" + phone_number_id + "/messages"), token_(std::move(token)) {
        server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
        port_ = server_.bind_to_any_port("127.0.0.1");
        if (port_ <= 0) throw std::runtime_error("fake Graph API: cannot bind 127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~FakeGraphApi() {
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    FakeGraphApi(const FakeGraphApi&) = delete;
    FakeGraphApi& operator=(const FakeGraphApi&) = delete;

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // The next `n` valid requests get `a` instead of success.
    void fail_next(int n, const Answer& a) {
        std::lock_guard lock(mu_);
        for (int i = 0; i < n; ++i) script_.push_back(a);
    }
    static Answer graph_error(int status, long long code, std::string message, std::string type = "OAuthException",
                              std::optional<bool> transient = std::nullopt) {
        Answer a;
        a.status = status;
        a.body = R"({"error":{"message":")" + message + R"(","type":")" + type + R"(","code":)" +
                 std::to_string(code) +
                 (transient ? std::string(R"(,"is_transient":)") + (*transient ? "true" : "false") : "") +
                 R"(,"error_data":{"messaging_product":"whatsapp","details":")" + message +
                 R"("},"fbtrace_id":"AbCdEfGh123"}})";
        return a;
    }

    std::vector<Received> received() const {
        std::lock_guard lock(mu_);
        return received_;
    }
    std::size_t accepted() const { return accepted_.load(); }
    std::size_t arrived() const { return arrived_.load(); }  // requests seen, answered or not yet
    std::size_t unauthorized() const { return unauthorized_.load(); }
    std::size_t invalid() const { return invalid_.load(); }

private:
    static void error(httplib::Response& res, int status, long long code, const std::string& message,
                      const std::string& type) {
        res.status = status;
        res.set_content(graph_error(status, code, message, type).body, "application/json");
    }

    static bool digits(const std::string& s) {
        if (s.empty()) return false;
        for (const char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    }

    static std::size_t code_points(const std::string& s) {
        std::size_t n = 0;
        for (const char c : s)
            if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
        return n;
    }

    // Empty when the body is a valid request; the details otherwise.
    static std::string check(const rapidjson::Document& d, Received& r) {
        if (!d.IsObject()) return "body must be a JSON object";
        if (!d.HasMember("messaging_product") || !d["messaging_product"].IsString() ||
            std::string(d["messaging_product"].GetString()) != "whatsapp")
            return "messaging_product must be whatsapp";
        if (!d.HasMember("to") || !d["to"].IsString() || !digits(d["to"].GetString())) return "to: invalid recipient";
        r.to = d["to"].GetString();
        if (!d.HasMember("type") || !d["type"].IsString()) return "type is required";
        r.type = d["type"].GetString();
        if (d.HasMember("biz_opaque_callback_data") && d["biz_opaque_callback_data"].IsString())
            r.callback_data = d["biz_opaque_callback_data"].GetString();
        if (!d.HasMember(r.type.c_str()) || !d[r.type.c_str()].IsObject()) return r.type + " object is required";
        const auto& o = d[r.type.c_str()];
        if (r.type == "text") {
            if (!o.HasMember("body") || !o["body"].IsString()) return "text.body is required";
            r.text = o["body"].GetString();
            if (r.text.empty() || code_points(r.text) > 4096) return "text.body must be 1 to 4096 characters";
        } else if (r.type == "image" || r.type == "audio" || r.type == "video" || r.type == "document" ||
                   r.type == "sticker") {
            if (o.HasMember("link") == o.HasMember("id")) return r.type + ": exactly one of link and id";
            if (o.HasMember("caption") && o["caption"].IsString()) r.text = o["caption"].GetString();
        } else if (r.type == "template") {
            if (!o.HasMember("name") || !o["name"].IsString()) return "template.name is required";
            if (!o.HasMember("language") || !o["language"].IsObject() || !o["language"].HasMember("code"))
                return "template.language.code is required";
            r.text = o["name"].GetString();
        } else {
            return "type " + r.type + " is not supported by this fake";
        }
        return "";
    }

    void handle(const httplib::Request& req, httplib::Response& res) {
        ++arrived_;
        if (req.path != path_) {
            ++invalid_;
            return error(res, 400, 100, "Unsupported post request. Object does not exist", "GraphMethodException");
        }
        if (req.get_header_value("Authorization") != "Bearer " + token_) {
            ++unauthorized_;
            return error(res, 401, 190, "Invalid OAuth access token - Cannot parse access token", "OAuthException");
        }
        if (req.get_header_value("Content-Type").rfind("application/json", 0) != 0) {
            ++invalid_;
            return error(res, 400, 100, "(#100) Invalid parameter: Content-Type must be application/json",
                         "OAuthException");
        }
        rapidjson::Document d;
        d.Parse(req.body.c_str(), req.body.size());
        Received r;
        r.body = req.body;
        const std::string problem = d.HasParseError() ? "body is not JSON" : check(d, r);
        if (!problem.empty()) {
            ++invalid_;
            return error(res, 400, 100, "(#100) Invalid parameter: " + problem, "OAuthException");
        }
        Answer a;
        bool scripted = false;
        {
            std::lock_guard lock(mu_);
            if (!script_.empty()) {
                a = script_.front();
                script_.pop_front();
                scripted = true;
            }
        }
        if (scripted) {
            if (a.delay.count() > 0) std::this_thread::sleep_for(a.delay);
            res.status = a.status;
            for (const auto& [k, v] : a.headers) res.set_header(k, v);
            res.set_content(a.body, "application/json");
        } else {
            const std::size_t n = ++accepted_;
            res.status = 200;
            res.set_content(R"({"messaging_product":"whatsapp","contacts":[{"input":")" + r.to + R"(","wa_id":")" +
                                r.to + R"("}],"messages":[{"id":"wamid.fake)" + std::to_string(n) + R"("}]})",
                            "application/json");
        }
        r.status = res.status;
        std::lock_guard lock(mu_);
        received_.push_back(std::move(r));
    }

    httplib::Server server_;
    std::string path_;
    std::string token_;
    int port_ = 0;
    std::thread thread_;
    mutable std::mutex mu_;
    std::deque<Answer> script_;
    std::vector<Received> received_;
    std::atomic<std::size_t> accepted_{0};
    std::atomic<std::size_t> arrived_{0};
    std::atomic<std::size_t> unauthorized_{0};
    std::atomic<std::size_t> invalid_{0};
};

}  // namespace omnibus::test
