"""The policy file written on a data dir's first start.

The engine always evaluates what the file says; this text is only the
starting point an operator then edits (upstream instead reloads built-in
defaults over the user's file).
"""

DEFAULT_POLICY = """\
# access_policies.yaml: what agents may do in this runtime.
# Written by symbi-console on first start; edit it freely (the console's policy
# screen validates as you type). The engine reloads it when it changes and keeps
# the last good version in force if a change is invalid.
#
# Semantics: higher priority first; at equal priority Deny > RequireApproval >
# Audit > Allow; a request no policy matches gets policy.default_effect (Deny).
version: "1.0"
policies:
  - name: allocations
    description: agents may be given the resources their limits ask for
    priority: 100
    conditions:
      - resource_type: ResourceAllocation
    effect: Allow
    operations: [Allocate]

  - name: network-needs-the-capability
    description: only agents created with the Network capability get a network
    priority: 100
    conditions:
      - resource_type: Network
      - capability: Network
    effect: Allow
    operations: [Connect]

  - name: messages-between-agents
    priority: 100
    conditions:
      - resource_type: Message
    effect: Allow
    operations: [Send, Publish, Receive]

  - name: agent-memory
    description: agents keep and recall their own memory and knowledge
    priority: 100
    conditions:
      - resource_type: Memory
    effect: Allow
    operations: [Read, Write]

  - name: shared-memory-is-audited
    description: knowledge shared with other agents is flagged in the audit
    priority: 100
    conditions:
      - resource_type: Memory
    effect: Audit
    resources: ["shared/**"]
    operations: [Write]

  - name: shared-secrets
    description: secrets under shared/ are readable by every agent, and flagged in the audit
    priority: 100
    conditions:
      - resource_type: Secret
    effect: Audit
    resources: ["shared/**"]
    operations: [Read]

  - name: tools-need-approval
    description: every tool call waits for a human until a narrower rule allows it
    priority: 50
    conditions:
      - resource_type: Tool
    effect: RequireApproval
    operations: [Call]
"""
