// The one gate every outbound connection passes. Nothing in slim calls
// curl_easy_perform except net::perform, so the `local-only` policy is
// enforced here and nowhere else: with it set, no connection is opened at all.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

typedef void CURL;  // libcurl's easy handle (curl.h defines it the same way)

namespace slim::net {

// Process-wide: after set_local_only(true) every perform() is refused.
void set_local_only(bool on);
bool local_only();

// Performs a prepared libcurl easy handle on behalf of `purpose` ("pull",
// "remote"). Refused (with no connection attempted) under local-only.
// Returns libcurl's result code, or an error when refused.
Result<int> perform(CURL* handle, const std::string& url, const char* purpose);

// scheme://host[:port] of a URL: what a message may name (a URL's userinfo,
// path or query may carry a credential, so none of them is kept).
std::string url_origin(const std::string& url);

// Connections attempted through perform() since start (refused ones excluded).
uint64_t connections_attempted();
// Attempts refused by the local-only policy.
uint64_t connections_refused();

}  // namespace slim::net
