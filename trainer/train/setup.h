#pragma once
// From a validated Config to the pieces of a run: the device, the loaders, the model, the
// optimizer, the schedule and the loss scaler. Each mapping checks what only becomes known here
// (a GPU that is not there, a data file that does not fit the model) and says what to change.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "core/device.h"
#include "trainer/config/config.h"
#include "trainer/data/loader.h"
#include "trainer/nn/model.h"
#include "trainer/optim/loss_scaler.h"
#include "trainer/optim/optimizer.h"
#include "trainer/optim/schedule.h"

namespace pit::train {

// run.device: auto takes the first GPU when one is visible and this build has code for it, else
// the CPU (saying why in `note` when a GPU was passed over); cuda without a usable GPU is an error.
Device resolve_device(const Config& config, std::string* note = nullptr);

// What the config asks of `device`'s kernels that they cannot do, found before anything is loaded
// and named by its keys: a transformer's head size (model.d_model / model.n_heads) above what
// attention takes there (256 on CUDA).
void check_model_fits_device(const Config& config, Device device);

// precision.compute, or f32 with a notice on `log` when the device cannot compute in it (the
// CPU kernels are f32/f64), so that one config runs on both.
DType resolve_compute_dtype(const Config& config, Device device, std::FILE* log);

// The training loader; with data parallelism (ranks > 1) it yields this rank's share of every
// batch of data.batch_size (the global batch).
std::unique_ptr<data::Loader> make_train_loader(const Config& config, int rank = 0, int ranks = 1);
std::unique_ptr<data::Loader> make_valid_loader(const Config& config);

// The model options of the config, completed from the training data (vocabulary, image shape,
// classes), which must fit the model.
nn::ModelOptions model_options(const Config& config, const data::Loader& train, DType compute);
// The validation data fits the model built from the training data: the same kind, a vocabulary
// within the model's, images of the same shape, labels within its classes. Checked at the start,
// so that no evaluation (the final one: after all the training) finds it out.
void check_valid_fits(const Config& config, const data::Loader& valid, const nn::ModelOptions& model);

std::unique_ptr<optim::Optimizer> make_optimizer(const Config& config, const nn::Module& model);
optim::LrSchedule make_schedule(const Config& config);
// A loss scaler for f16 compute; none otherwise.
std::optional<optim::LossScaler> make_loss_scaler(const Config& config, DType compute);

}  // namespace pit::train
