// http/session.hpp: one SSE-over-HTTP connection as a non-blocking state machine.
//
// Contract: the session never blocks, sleeps or calls out. step() advances it as far as it
// can and returns one Output: either something for the caller to do (resolve a name, wait
// for an fd until a deadline) or something that happened (connected, response opened, an
// SSE event, a failure, the connection closed, the end). Each Output is consumed when it is
// returned: the state is consistent between any two calls, so the caller may run arbitrary
// code (Lua callbacks that raise or yield) between them.
//
//   Idle -> Resolving -> Connecting -> [Handshaking] -> Sending -> ReadingHead -> Streaming -> Ended
//                                                  \-> ReadingErrorBody (non-2xx) -/
//
// Every phase that waits on the peer has an absolute deadline (connect_timeout covers
// resolve + TCP connect + TLS handshake; send_timeout the request; headers_timeout the
// response head and an error body; idle_timeout, if set, the gap between two reads while
// streaming). Events completed before a failure are all returned before the failure is, and
// none twice. After a failure or the end of the body, the order is Failed (if any), Closed
// (if Connected was returned), Ended.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "http/response_reader.hpp"
#include "http/tls_transport.hpp"
#include "http/transport.hpp"
#include "sse/parser.hpp"

namespace levhttp::http {

enum class ErrorKind { None, Dns, Connect, Tls, Timeout, Idle, Http, ContentType, TooLarge, Protocol, Closed };
const char *kind_name(ErrorKind kind);  // "dns", "connect", ..., "" for None

struct Failure {
  ErrorKind kind = ErrorKind::None;
  std::string message;
  int status = 0;  // the HTTP status for kind Http, else 0
};

struct SessionOptions {
  double connect_timeout = 10;
  double send_timeout = 30;
  double headers_timeout = 60;
  double idle_timeout = 0;  // only when has_idle_timeout
  bool has_idle_timeout = false;
  TlsOptions tls;  // for https://
};

inline constexpr double kNoDeadline = 1e300;
inline constexpr std::size_t kMaxErrorBody = 64 * 1024;
inline constexpr std::size_t kReadChunk = 64 * 1024;

// True for "[DONE]"-style end markers and the names reserved for lifecycle callbacks.
bool is_done_marker(std::string_view data);
bool is_lifecycle_name(std::string_view type);
// Does a Content-Type value name text/event-stream (parameters and case ignored)?
bool is_event_stream(std::string_view content_type);

class Session {
 public:
  enum class Phase {
    Idle,
    Resolving,
    Connecting,
    Handshaking,
    Sending,
    ReadingHead,
    ReadingErrorBody,
    Streaming,
    Ended
  };

  struct Output {
    enum Kind {
      NeedResolve, // resolve host() / port_string(), then on_resolved / on_resolve_failed
      Wait,        // wait until fd is ready for `events` (LEV_READ=1/LEV_WRITE=2) or deadline
      WouldRead,   // (step with allow_read=false) everything buffered has been returned
      Connected,   // TCP (and TLS) connection established
      Open,        // a 2xx response head with an acceptable Content-Type: see head()
      Event,       // an SSE event: see event()
      Done,        // an SSE event whose data is [DONE]; the connection is already closed
      Failed,      // see failure()
      Closed,      // the connection that was Connected is closed
      Ended,       // nothing more will happen until start()
    } kind;
    int fd = -1;
    int events = 0;
    double deadline = 0;
  };

  using FdClosingHook = void (*)(void *ctx, int fd);

  explicit Session(std::size_t max_event_size = sse::kDefaultMaxEventSize);
  ~Session();
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;

  Request &request() { return request_; }
  SessionOptions &options() { return options_; }
  // Called with each fd right before the session closes it (the loop must forget it).
  void set_fd_closing_hook(FdClosingHook hook, void *ctx) {
    hook_ = hook;
    hook_ctx_ = ctx;
  }

  // Begins a new connection with request() (plus Last-Event-ID once an ID was seen).
  // Requires phase Idle or Ended.
  void start(double now);
  Output step(double now, bool allow_read = true);

  void on_resolved(const sockaddr_storage *addrs, std::size_t n);
  void on_resolve_failed(std::string_view message);
  void on_resolve_timeout();

  // The caller closes: the connection is closed at once, buffered events are dropped, and
  // the next steps return Closed (if Connected was returned and Closed not yet) then Ended.
  void close();
  // Releases everything without any further Output (garbage collection).
  void abandon();

  Phase phase() const { return phase_; }
  bool streaming() const { return phase_ == Phase::Streaming && !draining_; }
  bool active() const { return phase_ != Phase::Idle && phase_ != Phase::Ended; }
  const ResponseHead &head() const { return reader_->head(); }
  const sse::Event &event() const { return event_; }
  const Failure &failure() const { return failure_; }
  std::string_view last_event_id() const { return parser_.last_event_id(); }
  const std::string &host() const { return request_.url.host; }
  std::string port_string() const { return std::to_string(request_.url.port); }

 private:
  using Kind = Output::Kind;
  void push(Kind k);
  void fail(ErrorKind kind, std::string message, int status = 0);
  void end_of_body();
  void close_connection();
  Output wait(int events, double deadline);
  // Each returns an Output for the caller, or nullopt to let step() go on.
  std::optional<Output> step_connect(double now);
  std::optional<Output> step_handshake(double now);
  std::optional<Output> step_send(double now);
  std::optional<Output> step_read(double now, bool allow_read);
  // Feeds inbuf_[in_pos_, in_len_) to the reader and acts on what it reports.
  void feed_reader();
  void on_head();
  void on_body(std::string_view bytes);
  double read_deadline() const;
  void finish_error_body();

  Request request_;
  SessionOptions options_;
  sse::Parser parser_;
  std::unique_ptr<ResponseReader> reader_;
  std::unique_ptr<Transport> transport_;
  FdClosingHook hook_ = nullptr;
  void *hook_ctx_ = nullptr;

  Phase phase_ = Phase::Idle;
  std::array<Kind, 4> pending_{};
  int npending_ = 0;
  bool draining_ = false;       // the connection is over; return buffered events, then end
  bool parser_stopped_ = false; // the parser reported TooLarge
  bool connected_ = false;      // Connected was returned and Closed not yet
  bool resolve_requested_ = false;

  std::vector<sockaddr_storage> addrs_;
  std::size_t next_addr_ = 0;
  int connecting_fd_ = -1;
  double connect_deadline_ = 0, attempt_deadline_ = 0;
  std::string last_connect_error_;

  std::string request_bytes_;
  std::size_t sent_ = 0;
  std::string send_error_;  // the send broke: reported unless the server's answer explains it
  double send_deadline_ = 0, head_deadline_ = 0, last_byte_ = 0;

  std::vector<char> inbuf_;
  std::size_t in_pos_ = 0, in_len_ = 0;
  std::string error_body_;
  bool error_body_full_ = false;

  sse::Event event_;
  Failure failure_;
};

}  // namespace levhttp::http
