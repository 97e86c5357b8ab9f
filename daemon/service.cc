#include "daemon/service.h"

namespace kaizen::daemon {

Error Error::InvalidRequest(std::string message, std::string param, std::string code) {
  return Error{400, "invalid_request_error", std::move(message), std::move(param),
               std::move(code), 0};
}

Error Error::Unauthorized(std::string message) {
  return Error{401, "authentication_error", std::move(message), {}, "invalid_api_key", 0};
}

Error Error::Forbidden(std::string message) {
  return Error{403, "permission_error", std::move(message), {}, {}, 0};
}

Error Error::NotFound(std::string message, std::string code) {
  return Error{404, "not_found_error", std::move(message), {}, std::move(code), 0};
}

Error Error::ModelNotFound(const std::string& model) {
  return Error{404, "invalid_request_error",
               "The model '" + model + "' does not exist (try GET /v1/models)", "model",
               "model_not_found", 0};
}

Error Error::TooManyRequests(std::string message, int retry_after_s) {
  return Error{429, "rate_limit_error", std::move(message), {}, "rate_limit_exceeded",
               retry_after_s};
}

Error Error::Conflict(std::string message) {
  return Error{409, "conflict_error", std::move(message), {}, {}, 0};
}

Error Error::Internal(std::string message) {
  return Error{500, "server_error", std::move(message), {}, {}, 0};
}

Error Error::Unavailable(std::string message, int retry_after_s) {
  return Error{503, "service_unavailable", std::move(message), {}, {}, retry_after_s};
}

Error Error::InsufficientStorage(std::string message) {
  return Error{507, "server_error", std::move(message), {}, "insufficient_storage", 30};
}

Error http_error(const Failure& f) {
  switch (f.code) {
    case Errc::kInvalidArgument:
    case Errc::kNothingToDo:
      return Error::InvalidRequest(f.message, f.param);
    case Errc::kNotFound:
      return Error::NotFound(f.message);
    case Errc::kConflict:
      return Error::Conflict(f.message);
    case Errc::kUnavailable:
      return Error::Unavailable(f.message, 2);
    case Errc::kNoSpace:
      return Error::InsufficientStorage(f.message);
    case Errc::kInternal:
      break;
  }
  return Error::Internal(f.message);
}

}  // namespace kaizen::daemon
