"""The counting bench's judge pairs edged's crossings with the hand count as fully as it can."""

from __future__ import annotations

from edged.bench.counting import _judge


def test_a_crossing_counted_late_does_not_take_its_neighbours_hand_count() -> None:
    """H crosses at 13.7 and is counted late (14.6: the track took them up again on the far side), I crosses at
    15.4 and is counted at 15.6. Paired in time order, the late count took I's crossing (0.8 s from it, against
    0.9 from H's) and I's own count was called a double; both are right."""
    truth = [{"t": 13.7, "direction": "in", "who": "H"}, {"t": 15.4, "direction": "in", "who": "I"}]
    judged = _judge([(14.6, "in", 30), (15.6, "in", 33)], truth)
    assert (judged["matched"], judged["double_counted"], judged["false"], judged["missed"]) == (2, 0, 0, 0)


def test_a_second_count_of_one_crossing_is_a_double_and_a_far_one_is_false() -> None:
    truth = [{"t": 4.3, "direction": "in", "who": "C"}, {"t": 9.0, "direction": "out", "who": "C"}]
    judged = _judge([(4.5, "in", 6), (4.7, "in", 10), (20.0, "out", 6), (9.2, "out", 6)], truth)
    assert (judged["matched"], judged["double_counted"], judged["false"], judged["missed"]) == (2, 1, 1, 0)
    assert (judged["returns"], judged["returns_kept"]) == (1, 1)  # track 6 counted both of C's crossings
