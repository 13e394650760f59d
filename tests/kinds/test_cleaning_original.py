"""The official profile reproduces the original DataPerf cleaning evaluator: a re-statement of
its procedure in PyTorch (``app/classifier.py`` and ``app/main.py`` / ``app/utils.py`` of
dataperf-vision-debugging, followed line by line: one model per prefix, seed 42, its threshold
loop over rounded training accuracies, its rounded test accuracies, its 0-based fraction) gives
the same accuracies and the same score as our scorer, which needs no PyTorch.

Where this re-statement simplifies the original: labels are fixed from the true labels of the
edition (the original looks them up by file name in its ground-truth CSV; the importer's tests
cover that lookup) and the input width is the data's (the original's is fixed at 2048). The
conformance suite (``tests/conformance/test_vision_cleaning.py``) runs the original itself.

Deliberate deviations of the default profile from this procedure, each tested in
``test_cleaning.py`` and ``learners/test_debug_linear.py`` and described in the user guide:
the threshold with the most training rows right (not the first strict improvement of the
accuracy rounded to 2 decimals), unrounded test accuracies, fixes counted from 0 (not the
0-based index over 1..n fixes), and a bootstrap interval.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dataperf.editions import Source, embedding_array, embedding_column, write_edition
from dataperf.kinds import cleaning_files as files
from dataperf.kinds.cleaning import CleaningChallenge

torch = pytest.importorskip("torch")
nn = torch.nn

SPEC = {"name": "demo-cleaning", "kind": "cleaning", "title": "Demo cleaning",
        "bootstrap": {"n_resamples": 100}}
TASK, N_TRAIN, N_TEST, DIM, RANK = "Alpha", 200, 100, 24, 6


class OriginalClassifier:
    """``LogisticClassifier`` of the original's ``app/classifier.py``."""

    def __init__(self, dim: int):
        torch.manual_seed(42)
        self.model = nn.Sequential(nn.Linear(dim, 128), nn.Linear(128, 1))  # fc1, fc2
        self.threshold = 0.5

    def fit(self, features, labels, epochs=20, lr=0.01, batch_size=64, weight_decay=0.9):
        features = torch.tensor(features)
        labels = torch.tensor(labels)
        dataset = torch.utils.data.TensorDataset(features, labels)
        dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
        criterion = nn.BCEWithLogitsLoss()
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.model.train(True)
        for _ in range(epochs):
            for x, y in dataloader:
                optimizer.zero_grad()
                y_pred = self.model(x.float())
                y_pred = y_pred.reshape(y.shape)
                loss = criterion(y_pred, y.float())
                loss.backward()
                optimizer.step()
        cand_thres = list(np.arange(0.1, 1, 0.05))
        best_acc = 0
        best_thres = 0
        for thres in cand_thres:
            self.threshold = thres
            accuracy = self.evaluate(features, labels)
            if accuracy > best_acc:
                best_acc = accuracy
                best_thres = thres
        self.threshold = best_thres

    def predict(self, feature):
        self.model.eval()
        if not isinstance(feature, torch.Tensor):
            feature = torch.tensor(feature).float()
        with torch.no_grad():
            output = torch.sigmoid(self.model(feature))
        output = np.where(output <= self.threshold, 0, output)
        output = np.where(output > self.threshold, 1, output)
        return output.ravel()

    def evaluate(self, test_features, test_labels):
        test_labels = test_labels.ravel()
        if isinstance(test_labels, torch.Tensor):
            test_labels = test_labels.numpy()
        pred = self.predict(test_features)
        accuracy = (pred == test_labels).mean()
        return round(accuracy, 2)


def original_evaluation(x_train, noisy, true, order, x_test, y_test):
    """``run_correction_eval`` for one submission: the accuracy before cleaning, the rounded
    test accuracy after each of 1..n fixes, and ``calc_auc_from_submission``'s fraction."""
    torch.set_num_threads(1)
    train_x = np.asarray(x_train, dtype=np.float32)
    train_y = np.vstack(np.asarray(noisy)).astype(np.float32)  # (n, 1), as np.vstack gives
    test_x, test_y = np.asarray(x_test, dtype=np.float32), np.vstack(np.asarray(y_test))
    before_clf = OriginalClassifier(train_x.shape[1])
    before_clf.fit(train_x, train_y)
    before_acc = before_clf.evaluate(test_x, test_y)
    accuracies = []
    for i in range(1, len(order) + 1):
        new_train_y = train_y.copy()
        for each in order[:i]:  # fix(): the true label of every proposed row
            new_train_y[each] = true[each]
        new_clf = OriginalClassifier(train_x.shape[1])
        new_clf.fit(train_x, new_train_y)
        accuracies.append(new_clf.evaluate(test_x, test_y))
    x, y = np.arange(1, len(order) + 1), np.array(accuracies)
    target_y = 0.95 * y[len(x) - 1]
    fraction = next(i / len(x) for i in range(len(x)) if y[i] >= target_y)
    return before_acc, accuracies, fraction


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    """One task of 200 rows: enough that training accuracies 1/200 apart round alike (so the
    threshold rules differ), low-rank overlapping classes that no threshold fits perfectly."""
    rng = np.random.default_rng(5)
    projection = rng.normal(size=(RANK, DIM))
    direction = rng.normal(size=RANK)

    def rows(n):
        labels = rng.integers(0, 2, n)
        latent = rng.normal(size=(n, RANK)) + np.outer(2 * labels - 1, direction) * 0.4
        return np.maximum(latent @ projection * 0.3 + 0.2, 0), labels

    x, truth = rows(N_TRAIN)
    noisy = truth.copy()
    noisy[rng.choice(N_TRAIN, N_TRAIN * 3 // 10, replace=False)] ^= 1
    x_test, y_test = rows(N_TEST)
    index = pa.array(np.arange(N_TRAIN, dtype=np.int32))

    def table(n, **columns):
        return pa.table({"task": [TASK] * n, **columns})

    tables = {
        "public/train.parquet": table(N_TRAIN, index=index, id=[f"r{i}" for i in range(N_TRAIN)],
                                      embedding=embedding_column(x),
                                      label=pa.array(noisy, pa.int8())),
        "public/validation.parquet": table(2, id=["v0", "v1"], embedding=embedding_column(x[:2]),
                                           label=pa.array(truth[:2], pa.int8())),
        "hidden/test.parquet": table(N_TEST, id=[f"t{i}" for i in range(N_TEST)],
                                     embedding=embedding_column(x_test),
                                     label=pa.array(y_test, pa.int8())),
        "hidden/truth.parquet": table(N_TRAIN, index=index, label=pa.array(truth, pa.int8())),
    }
    return write_edition(tmp_path_factory.mktemp("ed") / "offline", challenge="demo-cleaning",
                         edition="offline", builder="tests", builder_version="1", tasks=[TASK],
                         sources=[Source(name="gaussians", licence="CC0-1.0", origin="test")],
                         tables=tables, spec=SPEC)


def test_official_profile_equals_the_original_procedure(edition):
    challenge = CleaningChallenge.from_mapping(SPEC, origin="test")
    order = np.random.default_rng(3).permutation(N_TRAIN)
    submission = challenge.parse_submission({f"{TASK}_random.txt": files.write_order(order)},
                                            edition)
    (result,) = challenge.score(submission, edition, profile="official").tasks
    train = challenge.training_set(edition, TASK)
    test = edition.read_table("hidden/test.parquet")
    rows = test.filter(pc.equal(test.column("task"), TASK))
    before, accuracies, fraction = original_evaluation(
        train.embeddings, train.labels, challenge.true_labels(edition, TASK, N_TRAIN), order,
        embedding_array(rows.column("embedding")), rows.column("label").to_numpy())
    assert result.details["curve"] == [before, *accuracies]
    assert result.value == fraction
    assert result.details["method"] == "random"
