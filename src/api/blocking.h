// RunBlocking: run a blocking function (a database call, file I/O, a CPU-heavy
// step) on the blocking thread pool and resume the calling coroutine on its own
// executor when it is done, so io threads never block.
//
//   auto rows = co_await RunBlocking(req.blocking_executor(), [&] { return db.Query(...); });
//
// `fn` runs on a pool thread; anything it captures by reference must stay alive,
// which holds for locals of the awaiting coroutine (it is suspended meanwhile).
// An exception thrown by `fn` is rethrown in the coroutine. The work cannot be
// cancelled once started: Server::Shutdown waits for it.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>

#include "api/net.h"

namespace cnx::api {

template <typename F>
asio::awaitable<std::invoke_result_t<F&>> RunBlocking(BlockingExecutor pool, F fn) {
  using R = std::invoke_result_t<F&>;
  std::exception_ptr error;
  [[maybe_unused]] std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [&](auto handler) {
        asio::post(pool, [&, handler = std::move(handler)]() mutable {
          try {
            if constexpr (std::is_void_v<R>) {
              fn();
            } else {
              result.emplace(fn());
            }
          } catch (...) {
            error = std::current_exception();
          }
          // Resume the coroutine on its own executor (its io thread), never here.
          auto ex = asio::get_associated_executor(handler);
          asio::post(ex, std::move(handler));
        });
      },
      asio::use_awaitable);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

}  // namespace cnx::api
