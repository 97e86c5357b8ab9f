#include "daemon/serve/store_failure.h"

namespace kaizen::daemon {

Failure failure_from(const storage::Status& st) {
  if (st.IsNotFound()) return Failure::NotFound(st.message());
  if (st.IsInvalidArgument()) return Failure::Invalid(st.message());
  if (st.IsBusy()) return Failure::Unavailable(st.message());
  if (st.IsAborted() || st.IsAlreadyExists()) return Failure::Conflict(st.message());
  if (st.IsNoSpace()) {
    return Failure::NoSpace("the disk holding kaizen's state is full; nothing was stored (" +
                            st.message() + ")");
  }
  if (st.IsIOError()) {
    return Failure::Unavailable(
        "kaizen's state cannot be written (disk error); nothing was stored (" + st.message() + ")");
  }
  return Failure::Internal(st.ToString());
}

}  // namespace kaizen::daemon
