// The Store's Status as a domain Failure (daemon/errors.h): the one place storage errors
// become daemon errors, for serve/ and learn/ alike.
#pragma once

#include "daemon/errors.h"
#include "storage/status.h"

namespace kaizen::daemon {

// NotFound -> kNotFound, InvalidArgument -> kInvalidArgument, Busy -> kUnavailable,
// Aborted / AlreadyExists (well-formed, but the record's state forbids it: activate a
// rejected adapter, review an example twice) -> kConflict, NoSpace (disk full) ->
// kNoSpace, IOError (a failing disk) -> kUnavailable, anything else -> kInternal. The
// disk cases say that nothing was stored.
Failure failure_from(const storage::Status& status);

}  // namespace kaizen::daemon
