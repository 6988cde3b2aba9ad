"""`VAE`: the variational autoencoder (Kingma and Welling, 2014).

An encoder gives ``q(z | x) = N(mu, diag sigma^2)``, the prior is ``p(z) = N(0, I)`` and a decoder
gives the likelihood ``p(x | z)``; training maximizes the evidence lower bound with one
reparameterized sample ``z = mu + sigma * eps``:

```none
log p(x) >= ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)),
KL = 0.5 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
```

With ``iw_samples = k > 1`` it trains the importance-weighted autoencoder (IWAE; Burda, Grosse
and Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016) instead, on the tighter bound

```none
L_k(x) = E[log (1/k) sum_i w_i],   w_i = p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x),
```

whose gradient weighs each sample's ``grad log w_i`` by its normalized weight
``w_i / sum_j w_j`` (``L_1`` is the ELBO; ``L_k`` grows with ``k`` towards ``log p(x)``).
"""

import math

import keras
import tensorflow as tf

from tfflows import sampling_arguments
from zoo import plots
from zoo.models.autoencoders.hourglass import Hourglass, per_example_sum
from zoo.models.autoencoders.likelihoods import (
    bernoulli_log_prob,
    discretized_logistic_log_prob,
    gaussian_kl,
    standard_normal_log_prob,
)
from zoo.models.checks import whole_number
from zoo.models.noise import standard_normal, training_noise

LIKELIHOODS = ("discretized_logistic", "bernoulli")


@keras.saving.register_keras_serializable(package="zoo")
class VAE(Hourglass):
    """Variational autoencoder (Kingma and Welling, 2014) over images in ``[0, 1]``.

    Encoder: ``x -> (mu, log sigma^2)`` of ``q(z | x) = N(mu, diag sigma^2)``; prior
    ``N(0, I)``; decoder ``z -> `` parameters of ``p(x | z)``, independent per value:

    * ``"discretized_logistic"``: mean ``m`` and log-scale per value, a proper probability mass
      function over the data's ``K = num_levels`` levels (`discretized_logistic_log_prob`), so
      ``-ELBO`` bounds the negative log-likelihood of the discrete data and
      ``bits_per_dim = -ELBO / (D log 2)`` is comparable to a flow's bits/dim;
    * ``"bernoulli"``: logits, scored by cross-entropy against the intensities. It is a proper
      likelihood only for binary data (``num_levels == 2``); only then is ``bits_per_dim``
      reported.

    Loss: ``-ELBO = E_q[-log p(x | z)] + KL`` in nats per example, one sample
    ``z = mu + sigma eps`` (reparameterized), KL in closed form (module docstring). Metrics,
    means over examples: ``loss``, ``reconstruction`` (``-log p(x | z)``), ``kl``,
    ``bits_per_dim``. The tighter importance-weighted bound is `iw_log_likelihood`.

    Args:
      image_shape: ``(H, W, C)``, or any shape with ``architecture="dense"``.
      num_levels: number of discrete levels ``K`` of the data (``x = k / (K - 1)``).
      latent_dim: size of ``z``.
      architecture, hidden_units, filters, activation: the networks, as in `Autoencoder`.
      likelihood: ``"discretized_logistic"`` or ``"bernoulli"``.
      iw_samples: ``k``, the samples per example of the training objective: 1, the ELBO (KL in
        closed form); more, the IWAE bound ``L_k`` (module docstring), the loss then being
        ``-L_k`` (``reconstruction`` and ``kl`` stay the one-sample ELBO's terms, averaged
        over the ``k`` draws).
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        latent_dim=32,
        architecture="dense",
        hidden_units=(256,),
        filters=32,
        activation="relu",
        likelihood="discretized_logistic",
        iw_samples=1,
        **kwargs,
    ):
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        names = ["loss", "reconstruction", "kl"]
        if likelihood == "discretized_logistic" or int(num_levels) == 2:
            names.append("bits_per_dim")
        network = (image_shape, architecture, latent_dim, hidden_units, filters, activation)
        super().__init__(
            *network,
            encoder_outputs=2,
            values_per_pixel=2 if likelihood == "discretized_logistic" else 1,
            metric_names=names,
            **kwargs,
        )
        self.num_levels = int(num_levels)
        self.likelihood = likelihood
        self.iw_samples = whole_number("iw_samples", iw_samples)

    @classmethod
    def from_data(cls, info, **options):
        return cls(image_shape=info.image_shape, num_levels=info.num_levels, **options)

    @property
    def reports_bits(self):
        """Whether ``-ELBO`` bounds a discrete log-likelihood (so bits/dim mean something)."""
        return self.likelihood == "discretized_logistic" or self.num_levels == 2

    # The model.

    def posterior(self, x, training=False):
        """``(mu, log sigma^2)`` of ``q(z | x)``, float32 ``[batch, latent_dim]`` each."""
        return tf.split(self.encoded(x, training), 2, axis=-1)

    def _likelihood_params(self, z, training=False):
        params = self.decoded(z, training)
        if self.likelihood == "discretized_logistic":
            return tf.split(params, 2, axis=-1)
        return [params]

    def log_likelihood(self, x, z, training=False):
        """``log p(x | z)`` per example (nats), summed over the ``D`` values."""
        params = self._likelihood_params(z, training)
        if self.likelihood == "discretized_logistic":
            values = discretized_logistic_log_prob(x, *params, self.num_levels)
        else:
            values = bernoulli_log_prob(x, *params)
        return per_example_sum(values)

    def elbo_terms(self, x, eps, training=False):
        """``(log p(x | z), KL)`` per example at ``z = mu + sigma * eps``; the ELBO estimate is
        their difference."""
        x = tf.cast(x, tf.float32)
        mean, log_var = self.posterior(x, training)
        z = mean + tf.exp(0.5 * log_var) * tf.cast(eps, tf.float32)
        return self.log_likelihood(x, z, training), gaussian_kl(mean, log_var)

    def elbo(self, x, seed=None):
        """One-sample estimate of the ELBO of each example (nats); ``seed`` as in `sample`."""
        eps = standard_normal([tf.shape(x)[0], self.latent_dim], seed)
        log_likelihood, kl = self.elbo_terms(x, eps)
        return log_likelihood - kl

    def iw_log_likelihood(self, x, num_samples=50, seed=None):
        """The importance-weighted bound (Burda, Grosse and Salakhutdinov, 2016) per example:

        ```none
        log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x),
        ```

        by ``logsumexp`` in float32; ``k = num_samples``. It equals the ELBO in expectation for
        ``k = 1`` and grows towards ``log p(x)`` with ``k``. For the discretized likelihood it is
        a log-probability of the discrete data (so <= 0). Decodes ``k`` times the batch at once.
        """
        x = tf.cast(x, tf.float32)
        k = whole_number("num_samples", num_samples)
        eps = standard_normal([k, tf.shape(x)[0], self.latent_dim], seed)
        log_w = self.log_weights(x, *self.posterior(x), eps)[0]
        return tf.reduce_logsumexp(log_w, axis=0) - math.log(k)

    def log_weights(self, x, mean, log_var, eps, training=False):
        """``(log w, log p(x | z))``, each ``[k, batch]``: the importance log-weights
        ``log p(x | z_i) + log p(z_i) - log q(z_i | x)`` of ``z_i = mu + sigma * eps_i`` for
        ``eps`` ``[k, batch, latent_dim]``, and their likelihood terms. Decodes the ``k``
        draws of the batch at once."""
        k, n = tf.shape(eps)[0], tf.shape(x)[0]
        z = mean + tf.exp(0.5 * log_var) * eps
        log_prior = standard_normal_log_prob(z)
        log_q = standard_normal_log_prob(eps) - 0.5 * tf.reduce_sum(log_var, axis=-1)
        repeated = tf.reshape(
            tf.broadcast_to(x, tf.concat([[k], tf.shape(x)], 0)),
            tf.concat([[k * n], tf.shape(x)[1:]], 0),
        )
        flat_z = tf.reshape(z, [k * n, self.latent_dim])
        log_likelihood = tf.reshape(self.log_likelihood(repeated, flat_z, training), [k, n])
        return log_likelihood + log_prior - log_q, log_likelihood

    def iw_bits_per_dim(self, x, num_samples=50, seed=None):
        """``-iw_log_likelihood / (D log 2)``: bits/dim of the discrete data (an upper bound)."""
        return self.bits(-self.iw_log_likelihood(x, num_samples, seed))

    def encode(self, x):
        """The posterior mean ``mu(x)``."""
        return self.posterior(x)[0]

    def decode(self, z):
        """The decoder's mean image in ``[0, 1]``: the logistic's ``m`` clipped (discretized),
        or ``sigmoid(logits)`` (Bernoulli)."""
        params = self._likelihood_params(tf.cast(z, tf.float32))
        if self.likelihood == "discretized_logistic":
            return tf.clip_by_value(params[0], 0.0, 1.0)
        return tf.sigmoid(params[0])

    def sample(self, num_samples, temperature=1.0, seed=None, class_id=None):
        """``num_samples`` images in ``[0, 1]``: decoder means at ``z ~ N(0, T^2 I)``. ``seed``:
        an int (stateful) or a shape-[2] stateless seed."""
        self.unconditional(class_id)
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        z = standard_normal([num_samples, self.latent_dim], seed)
        return self.decode(temperature * z)

    # One step (`Hourglass`): one reparameterized draw, in evaluation too.

    def _step_noise(self, x, training):
        shape = [tf.shape(x)[0], self.latent_dim]
        return training_noise(
            self.noise, shape if self.iw_samples == 1 else [self.iw_samples, *shape]
        )

    def _objective(self, x, eps, training=False):
        if self.iw_samples == 1:
            log_likelihood, kl = self.elbo_terms(x, eps, training=training)
            loss = kl - log_likelihood
            return loss, (loss, log_likelihood, kl)
        mean, log_var = self.posterior(x, training)
        log_w, log_likelihood = self.log_weights(x, mean, log_var, eps, training)
        loss = math.log(self.iw_samples) - tf.reduce_logsumexp(log_w, axis=0)
        terms = (loss, tf.reduce_mean(log_likelihood, axis=0), gaussian_kl(mean, log_var))
        return loss, terms

    def _update_metrics(self, x, terms, sample_weight):
        loss, log_likelihood, kl = terms
        figures = [loss, -log_likelihood, kl]
        if self.reports_bits:
            figures.append(self.bits(loss))
        self._log(figures, sample_weight)

    # What the shared paths ask.

    def _encoding(self, images):
        mean, log_var = self.posterior(images)
        return {"z_mean": mean, "z_log_var": log_var}

    def _more_endpoints(self, images_spec, z_spec):
        """``sample``: ``z`` -> ``images`` (the caller draws ``z ~ N(0, T^2 I)``); ``elbo``:
        ``images`` -> ``elbo`` (nats) and, where defined, ``bits_per_dim``, per example. Every
        endpoint is deterministic: ``elbo`` uses one fixed ``eps`` (stateless seed ``[0, 0]``)
        shared by all rows, so an image's figure does not depend on its batch."""

        def elbo(images):
            eps = tf.random.stateless_normal([1, self.latent_dim], seed=[0, 0])
            log_likelihood, kl = self.elbo_terms(images, eps)
            out = {"elbo": log_likelihood - kl}
            if self.reports_bits:
                out["bits_per_dim"] = self.bits(kl - log_likelihood)
            return out

        return {"sample": (self._decoding, [z_spec]), "elbo": (elbo, [images_spec])}

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``samples.png`` (64 samples at ``temperature``) and ``reconstructions.png``; nothing
        for data that are not images."""
        if len(self.image_shape) != 3:
            return []
        samples = plots.model_samples(self, out, seed, temperature, "samples (decoder means)")
        return [samples, self._reconstructions(out, data)]

    def headline(self, results):
        figures = {
            "held_out_bits_per_dim": results.get("bits_per_dim"),
            "held_out_loss_nats": results["loss"],
            "held_out_kl": results["kl"],
            "held_out_reconstruction": results["reconstruction"],
        }
        return {k: round(float(v), 4) for k, v in figures.items() if v is not None}

    def get_config(self):
        return {
            **self._hourglass_config(),
            "num_levels": self.num_levels,
            "likelihood": self.likelihood,
            "iw_samples": self.iw_samples,
        }
