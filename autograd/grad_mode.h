#pragma once
// Grad mode: whether differentiable ops record themselves on the tape (per thread, on by default).

namespace pit {

bool grad_enabled();
void set_grad_enabled(bool enabled);

// Turns recording off in this thread until the guard dies (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace pit
