//! Balancing strategies: from D's accuracy (or loss) on one step, decide that step's updates.
//!
//! Everything here is plain arithmetic on four numbers read back from the step's D pass, so
//! the rules are tested without tensors. The trainer calls [`Balancer::decide`] once per step,
//! after the D pass and before either update.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::BalanceConfig;

/// Which rule steers the updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Baseline: both networks are updated every step.
    None,
    /// Leave out the G update when D is too weak, the D update when D is too strong.
    Skip,
    /// Move both learning rates multiplicatively towards balance, within bounds.
    LrAdjust,
}

/// What the thresholds are compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// `min(acc_real, acc_fake)` against `low` and `high` (the seed's rule).
    Accuracy,
    /// D's loss on each half against `margin` and `1 - margin` (the 2015 Torch blog's rule).
    Loss,
}

/// Where D stands on a step: too weak to teach G, in balance, or too strong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Below,
    Between,
    Above,
}

impl Zone {
    pub fn as_str(self) -> &'static str {
        match self {
            Zone::Below => "below",
            Zone::Between => "between",
            Zone::Above => "above",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::None => "none",
            Strategy::Skip => "skip",
            Strategy::LrAdjust => "lr-adjust",
        })
    }
}

/// What D's pass on one step measured: BCE on each half and accuracy on each half.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DStats {
    pub loss_real: f64,
    pub loss_fake: f64,
    pub acc_real: f64,
    pub acc_fake: f64,
}

/// One step's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub zone: Zone,
    pub update_d: bool,
    pub update_g: bool,
    pub lr_d: f64,
    pub lr_g: f64,
}

/// Classifies a step. With the loss signal, a D that is both too good on one half and too
/// bad on the other is treated as balanced, so that neither update is skipped.
pub fn zone(signal: Signal, stats: &DStats, cfg: &BalanceConfig) -> Zone {
    match signal {
        Signal::Accuracy => {
            let m = stats.acc_real.min(stats.acc_fake);
            if m < cfg.low {
                Zone::Below
            } else if m > cfg.high {
                Zone::Above
            } else {
                Zone::Between
            }
        }
        Signal::Loss => {
            let too_strong = stats.loss_real < cfg.margin || stats.loss_fake < cfg.margin;
            let upper = 1.0 - cfg.margin;
            let too_weak = stats.loss_real > upper || stats.loss_fake > upper;
            match (too_weak, too_strong) {
                (true, false) => Zone::Below,
                (false, true) => Zone::Above,
                _ => Zone::Between,
            }
        }
    }
}

/// Which networks a strategy updates in a zone, as `(update_d, update_g)`.
pub fn updates(strategy: Strategy, zone: Zone) -> (bool, bool) {
    match (strategy, zone) {
        (Strategy::Skip, Zone::Below) => (true, false),
        (Strategy::Skip, Zone::Above) => (false, true),
        _ => (true, true),
    }
}

/// The `lr-adjust` rule: one multiplicative step per learning rate, clamped to its bounds.
pub fn adjust_rates(lr_d: f64, lr_g: f64, zone: Zone, cfg: &BalanceConfig) -> (f64, f64) {
    let f = cfg.lr_factor;
    let (d, g) = match zone {
        Zone::Below => (lr_d * f, lr_g / f),
        Zone::Above => (lr_d / f, lr_g * f),
        Zone::Between => (lr_d * f, lr_g * f),
    };
    (d.clamp(cfg.lr_d_min, cfg.lr_d_max), g.clamp(cfg.lr_g_min, cfg.lr_g_max))
}

/// The balancing state of one run: its rule and the learning rates it has reached.
#[derive(Debug, Clone)]
pub struct Balancer {
    cfg: BalanceConfig,
    lr_d: f64,
    lr_g: f64,
}

impl Balancer {
    pub fn new(cfg: BalanceConfig, lr_d: f64, lr_g: f64) -> Self {
        Self { cfg, lr_d, lr_g }
    }

    /// The learning rates reached so far, `(lr_d, lr_g)`: the state a checkpoint keeps.
    pub fn rates(&self) -> (f64, f64) {
        (self.lr_d, self.lr_g)
    }

    pub fn config(&self) -> &BalanceConfig {
        &self.cfg
    }

    /// Decides this step's updates and learning rates from this step's D pass.
    pub fn decide(&mut self, stats: &DStats) -> Decision {
        let zone = zone(self.cfg.signal, stats, &self.cfg);
        let (update_d, update_g) = updates(self.cfg.strategy, zone);
        if self.cfg.strategy == Strategy::LrAdjust {
            (self.lr_d, self.lr_g) = adjust_rates(self.lr_d, self.lr_g, zone, &self.cfg);
        }
        Decision { zone, update_d, update_g, lr_d: self.lr_d, lr_g: self.lr_g }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(acc_real: f64, acc_fake: f64) -> DStats {
        DStats { loss_real: 0.5, loss_fake: 0.5, acc_real, acc_fake }
    }

    fn losses(loss_real: f64, loss_fake: f64) -> DStats {
        DStats { loss_real, loss_fake, acc_real: 0.5, acc_fake: 0.5 }
    }

    fn cfg(low: f64, high: f64) -> BalanceConfig {
        BalanceConfig { low, high, ..BalanceConfig::default() }
    }

    #[test]
    fn accuracy_zone_uses_the_weaker_half() {
        let c = cfg(0.5, 0.8);
        assert_eq!(zone(Signal::Accuracy, &stats(0.95, 0.4), &c), Zone::Below);
        assert_eq!(zone(Signal::Accuracy, &stats(0.9, 0.85), &c), Zone::Above);
        assert_eq!(zone(Signal::Accuracy, &stats(0.9, 0.6), &c), Zone::Between);
        // The thresholds themselves are inside the balanced zone.
        assert_eq!(zone(Signal::Accuracy, &stats(0.5, 0.8), &c), Zone::Between);
    }

    #[test]
    fn loss_zone_follows_the_margin_rule() {
        let c = BalanceConfig { margin: 0.3, ..BalanceConfig::default() };
        assert_eq!(zone(Signal::Loss, &losses(0.2, 0.5), &c), Zone::Above);
        assert_eq!(zone(Signal::Loss, &losses(0.5, 0.8), &c), Zone::Below);
        assert_eq!(zone(Signal::Loss, &losses(0.5, 0.6), &c), Zone::Between);
        // Both rules fire: neither update is skipped.
        assert_eq!(zone(Signal::Loss, &losses(0.1, 0.9), &c), Zone::Between);
    }

    #[test]
    fn skip_leaves_out_the_update_of_the_network_that_is_ahead() {
        assert_eq!(updates(Strategy::Skip, Zone::Below), (true, false));
        assert_eq!(updates(Strategy::Skip, Zone::Above), (false, true));
        assert_eq!(updates(Strategy::Skip, Zone::Between), (true, true));
        for z in [Zone::Below, Zone::Between, Zone::Above] {
            assert_eq!(updates(Strategy::None, z), (true, true));
            assert_eq!(updates(Strategy::LrAdjust, z), (true, true));
        }
    }

    #[test]
    fn lr_adjust_moves_rates_by_the_factor() {
        let c = BalanceConfig { lr_factor: 2.0, ..BalanceConfig::default() };
        assert_eq!(adjust_rates(1e-4, 4e-4, Zone::Below, &c), (2e-4, 2e-4));
        assert_eq!(adjust_rates(1e-4, 4e-4, Zone::Above, &c), (5e-5, 8e-4));
        assert_eq!(adjust_rates(1e-4, 4e-4, Zone::Between, &c), (2e-4, 8e-4));
    }

    #[test]
    fn lr_adjust_keeps_rates_within_bounds() {
        let c = BalanceConfig {
            lr_factor: 10.0,
            lr_d_min: 1e-5,
            lr_d_max: 1e-3,
            lr_g_min: 1e-5,
            lr_g_max: 1e-3,
            ..BalanceConfig::default()
        };
        assert_eq!(adjust_rates(5e-4, 5e-4, Zone::Between, &c), (1e-3, 1e-3));
        assert_eq!(adjust_rates(5e-5, 5e-5, Zone::Below, &c), (5e-4, 1e-5));
    }

    #[test]
    fn balancer_changes_rates_only_for_lr_adjust() {
        let base = cfg(0.5, 0.8);
        let mut plain = Balancer::new(base.clone(), 1e-4, 2e-4);
        let d = plain.decide(&stats(0.2, 0.2));
        assert_eq!((d.lr_d, d.lr_g, d.update_g), (1e-4, 2e-4, true));

        let adjusting = BalanceConfig { strategy: Strategy::LrAdjust, ..base };
        let mut b = Balancer::new(adjusting, 1e-4, 2e-4);
        let first = b.decide(&stats(0.2, 0.2));
        assert!(first.lr_d > 1e-4 && first.lr_g < 2e-4, "{first:?}");
        let second = b.decide(&stats(0.2, 0.2));
        assert!(second.lr_d > first.lr_d, "rates accumulate across steps");
    }

    #[test]
    fn strategy_names_match_the_yaml_spelling() {
        let s: Strategy = serde_yaml::from_str("lr-adjust").unwrap();
        assert_eq!(s, Strategy::LrAdjust);
        assert_eq!(s.to_string(), "lr-adjust");
    }
}
