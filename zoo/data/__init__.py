"""Image input pipelines: TFDS datasets by name, the embedded digits, local files and folders.

``load(name, split)`` returns a ``tf.data.Dataset`` of float32 images scaled as the model asks
(``scaling``: dequantized for densities, ``[0, 1]``, or ``[-1, 1]``; with labels when asked) and
a `DataInfo` that carries the images' shape, their number of discrete levels (which
dequantization and bits/dim need: 256 for 8-bit images, 17 for the embedded digits) and classes.
A zoo model states what it wants in its ``data_spec`` (`zoo.models.DataSpec`); a run's data
options travel as one `DataOptions`.

Sources, chosen by ``name`` (`sources`):

* ``"digits"``: the 8x8 handwritten digits bundled with scikit-learn (1,797 images, 17 levels),
  no download; split deterministically into ``train`` (1,500) and ``test`` (297).
* a path to a file or folder here (`files`): an ``.npz`` (Keras' ``mnist.npz`` layout, or
  arrays named by ``x_key`` / ``y_key``), MNIST idx files, LIBSVM text such as USPS's
  ``usps.bz2`` / ``usps.t.bz2``, or a folder of PNG / JPEG images (class subfolders or flat);
* any other name is a TFDS dataset (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``,
  ``svhn_cropped``, ...) loaded with ``tfds.load(name, data_dir=..., download=...)``.

Splits take slices, as in TFDS: ``"test[:9000]"``, ``"test[9000:]"``. ``classes`` keeps some
labels (renumbered ``0 .. k-1`` in the order given) and ``per_class`` draws that many labelled
images of each, the few-label subsets of transfer learning.

Each name is imported on first use (listed in ``__init__.pyi``), so that importing one
submodule does not import the others (the command line answers without TensorFlow).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
