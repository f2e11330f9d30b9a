"""Where each claim of claims.csv comes from: the paper, the thesis, or the project itself, with the sentence
it tests quoted verbatim.

Every claim family (the id before ``:``) has one :class:`Source`. ``quote`` is copied character for character
from the plain-text reference (``REFERENCE_FILES``; the files sit in the repository's ``../shared/references``)
and ``tests/test_claim_sources.py`` finds each quote there, whitespace aside. ``where`` is the short citation
the report shows (section, figure, theorem). Claims of the project's own (``origin == "project"``) quote
nothing: they say which textbook result they check and never carry the paper's name.
"""
from __future__ import annotations

from dataclasses import dataclass

PAPER = "paper"  # Mohamadi & Sutherland 2023 (ICML)
THESIS = "thesis"  # Mohamadi 2023 (MSc thesis, UBC)
PROJECT = "project"  # pntk's own checks
ORIGINS = {PAPER: "Mohamadi & Sutherland 2023, A Fast, Well-Founded Approximation to the Empirical NTK (ICML)",
           THESIS: "Mohamadi 2023, Insights From Infinitely Wide Neural Networks (MSc thesis, UBC)",
           PROJECT: "pntk's own check (not a claim of the paper or thesis)"}
REFERENCE_FILES = {PAPER: "mohamadi-sutherland-2023-pntk.txt", THESIS: "mohamadi-2023-thesis.txt"}


@dataclass(frozen=True)
class Source:
    origin: str  # PAPER | THESIS | PROJECT
    where: str  # section / figure / theorem, e.g. "§4.1, Fig 3 caption"
    quote: str  # verbatim from REFERENCE_FILES[origin]; for PROJECT the textbook result instead

    @property
    def short(self) -> str:
        """'paper, §4.1, Fig 3' — the report's source column."""
        return f"{self.origin}, {self.where}"


def _p(where: str, quote: str) -> Source:
    return Source(PAPER, where, quote)


def _t(where: str, quote: str) -> Source:
    return Source(THESIS, where, quote)


SOURCES: dict[str, Source] = {
    # ---- Figs 2–8 at initialisation: the approximation improves with width
    "fig2-width": _p("§4.1, Fig 2 caption",
                     "As the NN’s width grows, the eNTK converges to being diagonal at initialization among all "
                     "different architectures."),
    "fig2-block-width": _t("§3.3.1, Fig 3.2 caption",
                           "Comparing the **magnitude of sum of on-diagonal and off-diagonal elements of"),
    "fig3-norm-width": _p("§4.1, Fig 3 caption",
                          r"As the NN’s width grows, the relative difference in $\|\Theta_\theta\|_F$ and "
                          r"$\|\hat{\Theta}_\theta \otimes I_O\|_F$ decreases."),
    "fig3-distance-width": _p("§4.1", r"Furthermore, Figure 3 provides experimental support that as width grows, "
                                      r"$\hat{\Theta}_{\theta} \otimes I_O$ converges to Θ_{θ} in terms of relative "
                                      "Frobenius norm."),
    "fig4-width": _p("§4.2, Fig 4 caption",
                     r"As the NN’s width grows, the relative difference in "
                     r"$\lambda_{\max}(\Theta_{\theta}(\mathcal{D}, \mathcal{D}))$ and "
                     r"$\lambda_{\max}(\hat{\Theta}_{\theta}(\mathcal{D}, \mathcal{D}))$ decreases."),
    "fig5-width": _p("§4.2, Fig 5 caption",
                     r"As the NN’s width grows, the relative difference in "
                     r"$\lambda_{\min}(\Theta_\theta(\mathcal{D}, \mathcal{D}))$ and "
                     r"$\lambda_{\min}(\hat{\Theta}_\theta(\mathcal{D}, \mathcal{D}))$ decreases."),
    "fig6-width": _t("§3.3.2, Fig 3.6 caption",
                     r"The **relative difference in condition number**, "
                     r"$\kappa(K) = \lambda_{\max}(K)/\lambda_{\min}(K)$, decreases for wider nets."),
    "fig7-width": _p("§4.3, Fig 7 caption",
                     r"As the NN’s width grows, the relative difference in $\hat{f}^{lin}(\mathcal{X})$ and "
                     r"$f^{lin}(\mathcal{X})$ decreases at initialization."),
    "fig8-width": _t("§3.3.3, Fig 3.8 caption",
                     r"Wider NNs and trained nets have more similar prediction accuracies of \hat{f}^{lin} and "
                     r"f^{lin} at initialization."),
    # ---- rates in the width (Theorems 1, 5, 6; Remark 3.3.3)
    "thm1-rate": _t("§3.3.1, Theorem 3.3.1 (paper Theorem 1: O(w^-½), any net with a dense readout)",
                    r"\in \tilde{O}(n^{-\frac{1}{2}}). \quad (3.3)"),
    "thm5-rate": _t("§3.3.2, Theorem 3.3.4 (paper Theorem 5)",
                    r"\frac{\lambda_{\max}(\hat{\Theta}_{\theta}(x_1, x_2) \otimes I_O) - "
                    r"\lambda_{\max}(\Theta_{\theta}(x_1, x_2))}{\lambda_{\max}(\Theta_{\theta}(x_1, x_2))} "
                    r"\in \tilde{O}(n^{-\frac{1}{2}})."),
    "thm6-rate": _t("§3.3.3, Theorem 3.3.5 (paper Theorem 6)",
                    r"\|\hat{f}^{lin}(x) - f^{lin}(x)\|_F \in \tilde{O}(n^{-\frac{1}{2}}). \quad (3.6)"),
    "diag-rate": _t("§3.3.1, Remark 3.3.3",
                    "the ratio of information between off-diagonal and on-diagonal elements of the eNTK matrix "
                    r"converges to zero with a rate of $\mathcal{O}(n^{-\frac{1}{2}})$"),
    # ---- the eNTK's structure, at initialisation and after training
    "far-from-diagonal": _p("§3", "In fact, we show that for most practical networks, it is very far from being "
                                  "diagonal"),
    "first-logit": _p("§3", "Thus, at initialization, our sum of logits approximation agrees in distribution with "
                            "the first-logit approximation."),
    "worse-after-training": _p("§6", r"runs counter to our expectations based on the approximation worsening in "
                                     "Frobenius norm (Figure 7), maximum eigenvalue (Figure 4), and condition number "
                                     "(Figure 6)."),
    "convnet-lambda-min": _p("§4.2, Fig 5 caption",
                             r"CNN-GAP is ill-conditioned and $\lambda_{\min}(\Theta_\theta(\mathcal{D}, "
                             r"\mathcal{D})) \rightarrow 0$, while $\lambda_{\min}(\hat{\Theta}_\theta(\mathcal{D}, "
                             r"\mathcal{D})) > 0.001$, causing the huge discrepancy."),
    "lambda-min-training": _p("§4.2", "we observe that in ConvNet, WideResNet and ResNet18 architectures, λ_{\\min} "
                                      "is close to zero at initialization, but grows during training; the inverse "
                                      "phenomenon is observed with FCNs."),
    # ---- kernel regression on D (Figs 7–8) through training
    "fig7-training": _p("§4.3, Fig 7 caption", "Surprisingly, the difference between these two continues to quickly "
                                               "vanish throughout the training process using SGD."),
    "fig8-always": _p("§4.3, Fig 8 caption", "**Kernel regression using pNTK always achieves a higher test accuracy "
                                             "in comparison to kernel regression using eNTK.**"),
    "fig8-almost-always": _t("§3.3.3, Fig 3.8 caption",
                             "Using pNTK in kernel regression (as in Figure 3.7) almost always achieves a higher test "
                             "accuracy than using eNTK."),
    "fig8-training": _p("§4.3, Fig 8 caption", "Again, the difference between these two continues to vanish "
                                               "throughout the training process using SGD."),
    # ---- full-data regression (Figs 9–12, §5)
    "fig9-width": _p("§5, Fig 9 caption", r"As the NN’s width grows, the test accuracy of \hat{f}^{lin} is also "
                                          "improved, but eventually saturates with the growing width."),
    "fig9-training": _p("§5, Fig 9 caption", r"Using trained weights in computation of pNTK results in improved test "
                                             r"accuracy of \hat{f}^{lin} ."),
    "fig10-width": _p("§5, Fig 10 caption", r"In contrast to \hat{f}^{lin} , the test accuracy of f does not "
                                            "significantly improve with growing width."),
    "fig11-late-change": _p("§5", "we observe that the corresponding pNTK of the NN f continues to change even after "
                                  "epoch 50 of SGD training."),
    "fig12-width": _p("App. C, Fig 12", "However, as proven in Theorem 1 in conjunction with the linearization "
                                        "approximations provided in Lee et al. (2019), as width grows, this "
                                        "approximation becomes more accurate."),
    "sec5-infinite": _p("§5", "the test accuracies of predictions of kernel regression using the pNTK are lower than "
                              "those achieved by the NTKs of infinite-width counterparts for fully-connected and "
                              "fully-convolution networks."),
    # ---- cost (Fig 1)
    "fig1-cost": _p("§1, Fig 1 caption", "Comparison of **wall-clock time of evaluating the eNTK and pNTK of a pair "
                                         "of input datapoints** over various datasets and ResNet depths."),
    # ---- look-ahead active learning (thesis Ch. 2 and §3.5)
    "al-beats-random": _t("§2.4, Fig 2.3 (middle)", "regardless of the maximum width, the NTK method significantly "
                                                    "outperforms Random strategy until convergence"),
    "al-matches-entk": _t("§3.5", "The acquisition performance with the pNTK matches that with the eNTK"),
    "al-time-fraction": _t("§3.5, Fig 3.15 caption", "pNTK is much faster than eNTK without losing performance."),
    "al-time-15pct": _t("§3.5", "taking about 15% as long in total on this problem with $O = 10$."),
    "al-seq-vs-batch": _t("§2.4, Fig 2.3 (left)", "Sequential NTK outperforms batch NTK"),
    "al-vs-uncertainty": _t("§2.4", "NTK is consistently comparable to or better than the best competitor methods"),
    "al-naive-time": _t("§2.4, Fig 2.1a", "The NTK approximation is not only computationally efficient (more than "
                                          "100 times faster than Naïve)"),
    "al-naive-accuracy": _t("§2.4, Fig 2.1a", "but also yields significantly more accurate models."),
    "al-block": _t("§2.4, Fig 2.1a caption", "Accuracy of NTK and NTK w/o Block are the same."),
    "al-warm-cold": _t("§2.2, Theorem 2.2.1", "the final network from this process is asymptotically equivalent, in "
                                              "the infinite-width limit, to training the same network from scratch "
                                              "(cold-start) on the last, biggest dataset S_C"),
    # ---- the project's own checks
    "infinite-rate": Source(PROJECT, "Figs P1–P2; textbook: Jacot et al. 2018, Lee et al. 2019",
                            "finite-width kernels of an NTK-parameterised network approach the analytic "
                            "infinite-width NTK at rate w^-½"),
}


def source_of(claim_id: str) -> Source:
    """The Source of a claim id (``family`` or ``family:qualifier``); KeyError naming the family."""
    family = claim_id.split(":", 1)[0]
    if family not in SOURCES:
        raise KeyError(f"claim {claim_id!r}: no source registered for {family!r} (pntk.report.claim_sources)")
    return SOURCES[family]
