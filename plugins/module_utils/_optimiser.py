# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exact optimiser behind the planner (docs/cost-model.md, section 5).

A plan assigns the four roles to deployments: a set partition of the roles (15 of them), one
option per block of roles. Its aggregates are ``C`` (total cost, the sum of the blocks),
``H`` (wall hours, the slowest block: deployments run in parallel) and ``Q`` (role-weighted
mean quality). Every objective is a lexicographic key over those aggregates that grows with
``C`` and ``H`` and falls with ``Q``, so two exact prunings hold for all of them:

- an option that another option beats (or equals) on the block's cost, hours and quality at
  once can be swapped for it without making any key worse; only the per-block 3-D Pareto
  front ("candidates") is searched;
- branch and bound over the blocks of every partition with component-wise lower bounds
  (the cheapest, fastest, best remaining candidate of each block); a bound can only cut
  branches whose every completion has a strictly worse key.

Nothing is shortlisted: the search is equivalent to enumerating every plan (the property
tests compare it with that brute force).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools

ROLES = ("architect", "coder", "debugger", "reviewer")
OBJECTIVES = ("balanced", "cheapest", "fastest", "best_quality")
EPS = 1e-9
_DIGITS = 9
_SLACK = 1e-15   # a few ulps: covers sums taken in another order, never a rounding step
_TIE = 3e-9      # keys are rounded to 1e-9: closer first terms are compared in full

# Constraint sets tried in order: the first one some plan satisfies wins.
FALLBACKS = {
    "balanced": (("budget", "deadline", "quality"), ("quality",), ()),
    "cheapest": (("deadline", "quality"), ("quality",), ()),
    "fastest": (("budget", "quality"), ("quality",), ()),
    "best_quality": (("budget", "deadline"), ("budget",), ()),
}


def subsets(roles=ROLES):
    out = []
    for mask in range(1, 1 << len(roles)):
        out.append(tuple(r for i, r in enumerate(roles) if mask & (1 << i)))
    return out


def partitions(items):
    items = list(items)
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in partitions(rest):
        for index in range(len(smaller)):
            yield smaller[:index] + [[first] + smaller[index]] + smaller[index + 1:]
        yield [[first]] + smaller


class Cand(object):
    """One option serving one block of roles: its cost, hours and quality there."""

    __slots__ = ("opt", "cost", "hours", "quality", "wq", "serving", "index", "exclusive")

    def __init__(self, opt, cost, hours, quality, wq, serving, index, exclusive=None):
        self.opt, self.cost, self.hours, self.quality = opt, cost, hours, quality
        self.wq, self.serving, self.index = wq, serving, index
        # owned hardware is one machine: at most one deployment of a plan may use it
        self.exclusive = exclusive


def pareto_candidates(cands):
    """The 3-D front (lower cost, lower hours, higher quality) of one block's candidates;
    of several identical points the first in catalog order stays. An exclusive candidate
    (owned machine) only prunes candidates of the same machine: another block may hold it."""
    levels = sorted(set(c.quality for c in cands), reverse=True)
    position = dict((q, i) for i, q in enumerate(levels))
    best_hours = {}   # dominator class -> min hours among kept with quality >= level
    kept = []
    for cand in sorted(cands, key=lambda c: (c.cost, c.hours, -c.quality, c.index)):
        at = position[cand.quality]
        shared = best_hours.get(None)
        if shared is not None and shared[at] <= cand.hours:
            continue
        if cand.exclusive is not None:
            own = best_hours.get(cand.exclusive)
            if own is not None and own[at] <= cand.hours:
                continue
        kept.append(cand)
        row = best_hours.setdefault(cand.exclusive, [float("inf")] * len(levels))
        hours = cand.hours
        for i in range(at, len(levels)):
            if row[i] > hours:
                row[i] = hours
    return kept


def _r(value):
    return round(value, _DIGITS)


class Problem(object):
    """The block candidates of one workload plus the blueprint's limits."""

    def __init__(self, blocks, budget, deadline, threshold, weights, deadline_weight):
        self.blocks = blocks              # {roles tuple: [Cand, ...]} (all, unpruned)
        self.budget = float(budget)
        self.deadline = float(deadline)
        self.threshold = threshold
        self.deadline_weight = deadline_weight
        total = sum(weights.get(r, 0.0) for r in ROLES)
        self.weights = dict((r, weights.get(r, 0.0)) for r in ROLES) if total > 0 else \
            dict((r, 1.0) for r in ROLES)
        self.weight_total = sum(self.weights.values())
        self.front = dict((roles, pareto_candidates(cands)) for roles, cands in blocks.items())
        # fewest deployments first: a good incumbent early makes the bounds cut more
        self.partitions = sorted((tuple(tuple(b) for b in p) for p in partitions(ROLES)),
                                 key=len)

    def with_limits(self, budget, deadline, threshold):
        """The same blocks and fronts (the same workload) under other limits."""
        other = Problem.__new__(Problem)
        other.__dict__.update(self.__dict__)
        other.budget, other.deadline, other.threshold = float(budget), float(deadline), threshold
        return other

    # -- keys ------------------------------------------------------------------------------
    def key(self, objective, cost, hours, wq, count):
        """The lexicographic key a plan is ranked by (lower is better)."""
        q = _r(wq / self.weight_total)
        if objective == "cheapest":
            return (_r(cost), _r(hours), -q, count)
        if objective == "fastest":
            return (_r(hours), _r(cost), -q, count)
        if objective == "best_quality":
            return (-q, _r(cost), _r(hours), count)
        return (_r(self.score(cost, hours, wq)), _r(cost), _r(hours), -q, count)

    def score(self, cost, hours, wq):
        """The balanced score: budget share + weighted deadline share - weighted quality."""
        return (cost / self.budget + self.deadline_weight * hours / self.deadline
                - wq / 100.0)

    def feasible(self, constraints, cost, hours, quality_ok):
        return (("budget" not in constraints or cost <= self.budget + EPS)
                and ("deadline" not in constraints or hours <= self.deadline + EPS)
                and ("quality" not in constraints or quality_ok))

    def _lists(self, constraints, objective):
        """Per block: the front candidates allowed by the per-block constraints, in the
        order of the objective's primary term (so that a bound cut can stop the loop)."""
        out = {}
        for roles, cands in self.front.items():
            kept = [c for c in cands
                    if ("quality" not in constraints or c.quality >= self.threshold)
                    and ("deadline" not in constraints or c.hours <= self.deadline + EPS)
                    and ("budget" not in constraints or c.cost <= self.budget + EPS)]
            if objective == "cheapest":
                kept.sort(key=lambda c: (c.cost, c.hours, -c.wq, c.index))
            elif objective == "fastest":
                kept.sort(key=lambda c: (c.hours, c.cost, -c.wq, c.index))
            elif objective == "best_quality":
                kept.sort(key=lambda c: (-c.wq, c.cost, c.hours, c.index))
            else:
                kept.sort(key=lambda c: (c.cost / self.budget - c.wq / 100.0, c.index))
            out[roles] = kept
        return out

    # -- search ----------------------------------------------------------------------------
    def solve(self, objective, constraints):
        """The best plan for one objective under one constraint set, or None:
        (key, [(roles, Cand), ...])."""
        lists = self._lists(constraints, objective)
        need_budget = "budget" in constraints
        budget = self.budget + EPS
        best = [None, None, None]
        inv_b = 1.0 / self.budget
        inv_w = 1.0 / self.weight_total
        dl = self.deadline_weight / self.deadline
        for partition in self.partitions:
            blocks = [lists[b] for b in partition]
            if any(not b for b in blocks):
                continue
            k = len(blocks)
            # suffix bounds over the blocks not yet assigned
            rem_c, rem_h, rem_q, rem_s = [0.0] * (k + 1), [0.0] * (k + 1), [0.0] * (k + 1), \
                [0.0] * (k + 1)
            # for best_quality ties: what the remaining blocks cost (and take) at least when
            # each keeps its best quality, which a completion that ties on quality must do
            top_c, top_h = [0.0] * (k + 1), [0.0] * (k + 1)
            for i in range(k - 1, -1, -1):
                rem_c[i] = rem_c[i + 1] + min(c.cost for c in blocks[i])
                rem_h[i] = max(rem_h[i + 1], min(c.hours for c in blocks[i]))
                high = max(c.wq for c in blocks[i])
                rem_q[i] = rem_q[i + 1] + high
                tops = [c for c in blocks[i] if c.wq >= high - 1e-6 * (1.0 + high)]
                top_c[i] = top_c[i + 1] + min(c.cost for c in tops)
                top_h[i] = max(top_h[i + 1], min(c.hours for c in tops))
                rem_s[i] = rem_s[i + 1] + min(c.cost * inv_b - c.wq * 0.01 for c in blocks[i])
            if need_budget and rem_c[0] > budget:
                continue
            chosen = [None] * k
            taken = set()

            def bound(i, cost, hours, wq, sep):
                """Lower bound of the key of every completion after block i-1."""
                # the slack keeps float rounding of differently ordered sums from cutting a tie
                lc = cost + rem_c[i]
                lc -= _SLACK * (1.0 + abs(lc))
                lh = hours if hours > rem_h[i] else rem_h[i]
                lq = wq + rem_q[i]
                lq += _SLACK * (1.0 + abs(lq))
                if objective == "best_quality":
                    # reached only when the first term ties the best: see top_c
                    lc = cost + top_c[i]
                    lc -= _SLACK * (1.0 + abs(lc))
                    lh = max(lh, top_h[i])
                low = self.key(objective, lc, lh, lq, k)
                if objective == "balanced":
                    ls = sep + rem_s[i] + dl * lh
                    low = (_r(ls - _SLACK * (1.0 + abs(ls))),) + low[1:]
                return low

            def primary(i, c2, h2, q2, s2, hours):
                """(lower bound of the key's first term, its part that only grows along the
                candidate order), unrounded."""
                if objective == "cheapest":
                    low = c2 + rem_c[i]
                    return low, low
                if objective == "fastest":
                    low = h2 if h2 > rem_h[i] else rem_h[i]
                    return low, low
                if objective == "best_quality":
                    low = -(q2 + rem_q[i]) * inv_w
                    return low, low
                fixed = s2 + rem_s[i]
                return (fixed + dl * (h2 if h2 > rem_h[i] else rem_h[i]),
                        fixed + dl * (hours if hours > rem_h[i] else rem_h[i]))

            def dfs(i, cost, hours, wq, sep):
                if i == k:
                    key = self.key(objective, cost, hours, wq, k)
                    if best[0] is None or key < best[0]:
                        best[0] = key
                        best[1] = list(zip(partition, chosen))
                        best[2] = primary(k, cost, hours, wq, sep, hours)[0]
                    return
                nxt = i + 1
                for cand in blocks[i]:
                    if cand.exclusive is not None and cand.exclusive in taken:
                        continue
                    c2 = cost + cand.cost
                    if need_budget and c2 + rem_c[nxt] > budget:
                        if objective == "cheapest":
                            break
                        continue
                    h2 = hours if hours > cand.hours else cand.hours
                    q2 = wq + cand.wq
                    s2 = sep + cand.cost * inv_b - cand.wq * 0.01
                    if best[0] is not None:
                        low, monotone = primary(nxt, c2, h2, q2, s2, hours)
                        limit = best[2] + _TIE * (1.0 + abs(best[2]))
                        if low > limit:
                            # candidates come in the order of the primary term: once its
                            # growing part is past the best, no later candidate can do better
                            if monotone > limit:
                                break
                            continue
                        if low > best[2] - _TIE * (1.0 + abs(best[2])) and \
                                bound(nxt, c2, h2, q2, s2) >= best[0]:
                            continue
                    chosen[i] = cand
                    if cand.exclusive is not None:
                        taken.add(cand.exclusive)
                        dfs(nxt, c2, h2, q2, s2)
                        taken.discard(cand.exclusive)
                    else:
                        dfs(nxt, c2, h2, q2, s2)
                chosen[i] = None

            dfs(0, 0.0, 0.0, 0.0, 0.0)
        if best[0] is None:
            return None
        return best[0], best[1]

    def best(self, objective):
        """(plan, constraints met): the first constraint set of FALLBACKS[objective] that any
        plan satisfies, and the best plan under it."""
        for constraints in FALLBACKS[objective]:
            found = self.solve(objective, constraints)
            if found is not None:
                return found[1], constraints
        raise ValueError("no plan at all")   # an empty problem; the planner checks before

    @staticmethod
    def _sweep(partition, blocks, points):
        """Append the cheapest combination at every wall-time step of one partition."""
        stairs = []
        for pool in blocks:
            stair = []
            for cand in pool:   # already sorted by hours, then cost
                if not stair or cand.cost < stair[-1].cost:
                    stair.append(cand)
            if not stair:
                return
            stairs.append(stair)
        events = sorted((cand.hours, i, j) for i, stair in enumerate(stairs)
                        for j, cand in enumerate(stair))
        current = [None] * len(stairs)
        for _hours, i, j in events:
            current[i] = stairs[i][j]
            if all(c is not None for c in current):
                cost = 0.0
                for c in current:
                    cost += c.cost
                hours = max(c.hours for c in current)
                points.append((_r(hours), _r(cost), len(stairs),
                               list(zip(partition, list(current)))))

    def cost_time_front(self):
        """Every plan meeting the quality threshold that no other such plan beats on both
        cost and wall hours (or all plans when none meets it): [(hours, cost, plan)]."""
        stairs = {}
        use_quality = any(all(any(c.quality >= self.threshold for c in self.front[b])
                              for b in partition) for partition in self.partitions)
        for roles, cands in self.front.items():
            pool = [c for c in cands if not use_quality or c.quality >= self.threshold]
            pool.sort(key=lambda c: (c.hours, c.cost, -c.wq, c.index))
            stairs[roles] = pool
        exclusive = sorted(set(c.exclusive for cands in stairs.values() for c in cands
                               if c.exclusive is not None))
        points = []
        for partition in self.partitions:
            # every way of giving each exclusive machine to at most one block: each variant's
            # plans are valid, and every valid plan is in one of them
            for owners in itertools.product(range(len(partition) + 1), repeat=len(exclusive)):
                owner = dict(zip(exclusive, owners))
                blocks = [[c for c in stairs[b] if c.exclusive is None or owner[c.exclusive] == i]
                          for i, b in enumerate(partition)]
                self._sweep(partition, blocks, points)
        points.sort(key=lambda p: (p[0], p[1], p[2]))
        front = []
        for hours, cost, _count, plan in points:
            if not front or cost < front[-1][1]:
                front.append((hours, cost, plan))
        return front
