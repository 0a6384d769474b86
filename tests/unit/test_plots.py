"""The plots' labels: written apart where points share a place."""

import matplotlib.pyplot as plt

from edgeseg.plots import annotate_apart


def test_labels_at_one_point_are_stacked_and_labels_apart_are_not_moved():
    figure, axes = plt.subplots()
    labels = [("naive", 476.0, 0.296), ("naive-os32", 472.0, 0.281), ("naive@144x192", 476.0, 0.281), ("wide", 765.0, 0.306)]
    axes.scatter([x for _, x, _ in labels], [y for _, _, y in labels])
    annotate_apart(axes, labels, fontsize=7, offset=(4, -8))
    rises = {text.get_text(): text.xyann[1] for text in axes.texts}
    plt.close(figure)
    # the two at 0.281 share a point: the lower in the list goes a line below the other
    assert rises["naive"] == rises["naive-os32"] == rises["wide"] == -8
    assert rises["naive@144x192"] < rises["naive-os32"]
