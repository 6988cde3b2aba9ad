import numpy as np
import scipy.linalg
import tensorflow as tf

from zoo import data
from zoo.models.gan import metrics as gan_metrics
from zoo.models.gan.judge import FeatureClassifier


def random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_the_closed_form_with_a_general_matrix_root():
    rng = np.random.default_rng(0)
    d = 6
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_cov(rng, d), random_cov(rng, d)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2)))
    np.testing.assert_allclose(gan_metrics.frechet_distance(m1, s1, m2, s2), expected, rtol=1e-8)
    assert abs(float(gan_metrics.frechet_distance(m1, s1, m1, s1))) < 1e-8


def test_streaming_metric_equals_the_batch_computation():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 5)), rng.normal(1.0, 2.0, size=(200, 5))
    metric = gan_metrics.FrechetDistance(5)
    for start in range(0, 300, 64):
        metric.update_state(real[start : start + 64], fake[start : start + 64])
    expected = gan_metrics.frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )
    np.testing.assert_allclose(metric.result(), expected, rtol=1e-8)
    metric.reset_state()
    metric.update_state(real, real)
    assert abs(float(metric.result())) < 1e-8


def test_mode_coverage_counts_classes_and_kl():
    metric = gan_metrics.ModeCoverage(4)
    metric.update_state([0, 0, 1, 1], [0, 1, 2, 3])
    result = metric.result()
    assert float(result["classes_covered"]) == 2
    np.testing.assert_allclose(result["class_kl"], 2 * 0.5 * np.log(0.5 / 0.25), rtol=1e-10)
    metric.update_state([2, 3, 2, 3], [0, 1, 2, 3])
    np.testing.assert_allclose(metric.result()["class_kl"], 0.0, atol=1e-12)


def test_judge_scores_real_digits_near_the_floor_and_noise_far_from_it():
    ds, info = data.load("digits", "train", batch_size=64, scaling="unit", with_labels=True)
    judge = FeatureClassifier(info.image_shape, info.num_classes)
    assert judge.fit_labelled(ds.repeat(), steps=300) > 0.9
    test, _ = data.load("digits", "test", batch_size=297, scaling="unit", with_labels=True)
    held_out, labels = next(iter(test))
    train_images = np.concatenate([x for x, _ in ds.take(5)])[:297]
    accuracy = np.mean(judge.predict_classes(held_out).numpy() == labels.numpy())
    assert accuracy > 0.85, accuracy
    real = gan_metrics.sample_figures(judge, train_images, held_out.numpy())
    noise = gan_metrics.sample_figures(
        judge, tf.random.uniform([297, 8, 8, 1], seed=1).numpy(), held_out.numpy()
    )
    assert real["classes_covered"] == 10 and real["class_kl"] < 0.1, real
    assert noise["frechet_distance"] > 10 * real["frechet_distance"], (real, noise)


def test_channelwise_classifier_combines_channel_classes_in_base_k():
    from zoo.models.gan.judge import ChannelwiseClassifier

    judge = FeatureClassifier((8, 8, 1), 10)
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(5, 8, 8, 3)).astype(np.float32)
    stacked = ChannelwiseClassifier(judge, 3)
    per_channel = [judge.predict_classes(images[..., c : c + 1]).numpy() for c in range(3)]
    expected = per_channel[0] + 10 * per_channel[1] + 100 * per_channel[2]
    np.testing.assert_array_equal(stacked.predict_classes(images), expected)
    assert stacked.num_classes == 1000 and stacked.features(images).shape == (5, 3 * 64)
    np.testing.assert_allclose(
        stacked.features(images)[:, 64:128], judge.features(images[..., 1:2]), rtol=1e-6
    )
