package callbacks

// The reason table is generated from the lws-callbacks.h of every libwebsockets
// release the binding supports, so that names and values come from the headers
// rather than from hand-copied numbers. To regenerate, extract the headers of
// the releases (git show vX.Y.Z:include/libwebsockets/lws-callbacks.h from the
// libwebsockets repository) and run, from the module root:
//
//	go run ./callbacks/internal/gen 4.1.6=PATH 4.2.0=PATH 4.3.0=PATH ...
//
// The output was generated from 4.1.6, 4.2.0, 4.2.2, 4.3.0 to 4.3.10, 4.4.0 and
// 4.5.8. cgo's tests check every constant against the C enumerators of the
// headers the binding is compiled against.
