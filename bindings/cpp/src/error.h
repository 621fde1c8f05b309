// Turns a failed C call (status + error object) into a gnaming::Error; shared by the C++ sources.
#ifndef GNAMING_GRPCPP_ERROR_H
#define GNAMING_GRPCPP_ERROR_H

#include <gnaming.h>

#include <string>

#include "gnaming/grpcpp.h"

namespace gnaming::internal {

// Throws gnaming::Error "what: GN_STATUS_...: message", freeing `err`.
[[noreturn]] inline void Throw(gn_status status, gn_error* err, const char* what) {
  std::string message = std::string(what) + ": " + gn_status_name(status);
  if (err != nullptr && *gn_error_message(err) != '\0') message += std::string(": ") + gn_error_message(err);
  gn_error_free(err);
  throw Error(status, message);
}

// `err` by reference: in Check(gn_call(&err), err, ...) the call may run after a by-value `err`
// was read, which would lose the message.
inline void Check(gn_status status, gn_error*& err, const char* what) {
  if (status != GN_STATUS_OK) Throw(status, err, what);
}

}  // namespace gnaming::internal

#endif  // GNAMING_GRPCPP_ERROR_H
