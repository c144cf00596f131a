"""A second look at each object: classifiers on tracked crops (sub-labels once attempts agree), the verifier (the
detector again on an enlarged crop before a new object is published) and named colours. ``Looks`` is what the
pipeline holds; the models run on the looks thread, batched across cameras, never on the scheduler's."""

from edged.looks.classifier import Classifier, classifier_labels
from edged.looks.colours import name_colours
from edged.looks.looks import Looks, needs, wanted
from edged.looks.votes import ColourVotes, Votes

__all__ = ["Classifier", "ColourVotes", "Looks", "Votes", "classifier_labels", "name_colours", "needs",
           "wanted"]
