"""scikit-learn estimators: recurrent layers, a Dense head, a loss and an optimizer.

What ``X`` may be (see :mod:`anyrnn._panel`): a 3-D array ``(n_samples, n_steps,
n_features)`` (``(n_samples, n_channels, n_steps)`` with ``layout="nct"``), a 2-D array
``(n_samples, n_steps)`` of univariate sequences, a list of sequences of unequal
lengths, or an array NaN-padded after each sequence's end. Unequal lengths run the
layers' masked path, so a padded sequence gives exactly what it gives alone. ``predict``
may get sequences of other lengths than ``fit`` did (a 2-D table keeps its columns,
as in any scikit-learn estimator: give 3-D data or a list for other lengths).

The estimators follow the scikit-learn protocol through its base classes
(``get_params``/``set_params``, ``clone``, ``Pipeline``, ``GridSearchCV``, pickling) and
pass its ``check_estimator`` (the test lists the deviations). They compute on the
backend named by ``backend=``/``device=``/``dtype=``: the data are moved there once per
call, and every public call (``fit``, ``partial_fit``, ``predict``, ``predict_proba``,
``score``, saving and loading) runs as a whole with that device current
(:meth:`~anyrnn.Backend.run`, entered once where the call starts). Shuffling indices
are drawn on the host from ``random_state``, so the same ``random_state`` gives a
bit-identical fit on the same backend.

A call that raises (``fit``, ``partial_fit``, ``predict``...) leaves the estimator
exactly as it was: a fit computes everything first and assigns the fitted attributes
at the end, in one step.

``fit(..., comm=)`` and ``partial_fit(..., comm=)`` with an mpi4py communicator train
data-parallel, each rank passing its own samples: the fit loop asks a
:class:`~anyrnn.distributed.Sync` at a few points (reading, targets, weights, random
stream and weights, split, each step's gradients, each epoch's loss, validation and
decisions); without a communicator each of those calls does nothing.

Outputs: ``predict`` of the classifier returns labels as a NumPy array (labels may be
strings); ``predict_proba`` and the regressor's ``predict`` return arrays of the
estimator's backend (NumPy arrays on the default backend).

The modules, from the public classes down:

* :mod:`.classifier` (:class:`RNNClassifier`, with :mod:`.labels`: reading, encoding and
  weighing the labels), :mod:`.seeds` (:class:`ScratchSimpleRNNClassifier`, the seeds'
  names) and :mod:`.regressor` (:class:`RNNRegressor`);
* :mod:`.base`: the shared base estimator (hyper-parameters and their checks, reading
  ``X``, inference), which gathers :mod:`.fitting` (a fit from its checks to the commit of
  the fitted attributes), :mod:`.training` (the fit loop, monitoring, early stopping) and
  :mod:`.persistence` (model files);
* :mod:`.network` (the fitted :class:`Network` and how the hyper-parameters build it) and
  :mod:`.data` (the training data on the backend, minibatches).
"""

from .classifier import RNNClassifier
from .data import _Data as _Data  # imported from here by tests, as from the former module
from .network import Network
from .regressor import RNNRegressor
from .seeds import ScratchSimpleRNNClassifier

__all__ = ["RNNClassifier", "RNNRegressor", "ScratchSimpleRNNClassifier", "Network"]
