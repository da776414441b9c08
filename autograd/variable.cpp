#include "autograd/variable.h"

#include "autograd/node.h"
#include "core/error.h"

namespace pit {

Variable::Variable(Tensor data, bool requires_grad, std::string name)
    : state_(std::make_shared<VariableState>()) {
  PIT_CHECK(data.defined(), "Variable: the tensor is undefined");
  PIT_CHECK(!requires_grad || is_floating(data.dtype()), "Variable '", name, "': a ",
            dtype_name(data.dtype()), " tensor cannot require grad; only floating dtypes can");
  state_->data = std::move(data);
  state_->requires_grad = requires_grad;
  state_->name = std::move(name);
}

const std::shared_ptr<VariableState>& Variable::state() const {
  PIT_CHECK(state_ != nullptr, "use of an undefined Variable");
  return state_;
}

const Tensor& Variable::data() const { return state()->data; }

void Variable::set_data(Tensor data) {
  PIT_CHECK(data.defined(), "set_data: the tensor is undefined");
  state()->data = std::move(data);
}

Variable& Variable::set_requires_grad(bool requires_grad) {
  PIT_CHECK(is_leaf(), "set_requires_grad on a Variable computed by '", grad_fn()->name(),
            "': only leaves may change it; use detach() for a new leaf");
  PIT_CHECK(!requires_grad || is_floating(data().dtype()), "a ", dtype_name(data().dtype()),
            " Variable cannot require grad; only floating dtypes can");
  state()->requires_grad = requires_grad;
  return *this;
}

Variable Variable::detach() const { return Variable(data(), false, name()); }

void Variable::register_hook(std::function<void(Tensor&)> fn) {
  PIT_CHECK(is_leaf() && requires_grad(), "register_hook needs a leaf Variable that requires "
            "grad ('", name(), "' is ", is_leaf() ? "a leaf without requires_grad" : "computed",
            ")");
  state()->hooks.push_back(std::move(fn));
}

}  // namespace pit
