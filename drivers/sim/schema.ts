import { z } from 'zod';
import { duration, identifier, pointName } from '../common/primitives.js';
import { STEAM_BOILER_SIGNALS } from './steam-boiler.js';

export const MODELS = { 'steam-boiler': STEAM_BOILER_SIGNALS } as const;
export type ModelName = keyof typeof MODELS;
const ALL_SIGNALS = new Set(Object.values(MODELS).flatMap((m) => Object.keys(m)));

export const simConnectionSchema = z
  .strictObject({
    id: identifier.meta({ description: 'Connection id that equipment entries refer to.', examples: ['sim'] }),
    type: z.literal('sim').meta({ description: 'Simulated equipment, for the demo and tests.' }),
    seed: z
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Seed of the simulated noise: the same seed gives the same values.', examples: [1, 42] }),
  })
  .meta({ title: 'sim connection' });

export const simPointSchema = z
  .strictObject({
    name: pointName.meta({ description: 'Point name, unique within the equipment.', examples: ['drum_level'] }),
    signal: z
      .enum([...ALL_SIGNALS] as [string, ...string[]])
      .optional()
      .meta({ description: 'Simulated signal to read; defaults to the point name.', examples: ['drum_level'] }),
    unit: z
      .string()
      .optional()
      .meta({ description: "Engineering unit; defaults to the signal's own unit and must match it.", examples: ['mm'] }),
    description: z.string().optional().meta({ description: 'Free text shown to users.' }),
  })
  .meta({ title: 'sim point' });

export const scenarioSchema = z
  .strictObject({
    normal: duration.prefault('60s').meta({ description: 'Normal operation before the hazard.', 'x-examples': ['60s'] }),
    hazard: duration.prefault('30s').meta({
      description: 'Feed pump trip: the drum level falls below -200 mm, the low-water interlock trips and the flame is lost.',
      'x-examples': ['30s'],
    }),
    recovery: duration.prefault('30s').meta({ description: 'Feed restored, interlock reset, purge, re-ignition.', 'x-examples': ['30s'] }),
    repeat: z.boolean().default(true).meta({ description: 'Start the cycle again after recovery.' }),
  })
  .prefault({})
  .meta({ description: 'Timing of the scripted scenario: normal, hazard, recovery.' });

export const simEquipmentSchema = z
  .strictObject({
    model: z
      .enum(Object.keys(MODELS) as [ModelName, ...ModelName[]])
      .meta({ description: 'What is simulated.', examples: ['steam-boiler'] }),
    scenario: scenarioSchema,
    points: z.array(simPointSchema).min(1).meta({ description: 'Points read from the simulated equipment.' }),
  })
  .superRefine(
    (eq, ctx) => {
      // Runs even when other keys failed, so every problem is reported at once: check what is there.
      // A model that is not one of the names (a mapping, `constructor`) was reported by the enum.
      const signals: Record<string, { unit: string | undefined }> | undefined =
        typeof eq.model === 'string' && Object.hasOwn(MODELS, eq.model) ? MODELS[eq.model] : undefined;
      if (!signals || !Array.isArray(eq.points)) return;
      eq.points.forEach((p, i) => {
        if (typeof p !== 'object' || p === null || typeof p.name !== 'string') return;
        const signal = p.signal ?? p.name;
        const info = signals[signal];
        if (!info) {
          // A signal that no model has is already reported by the signal enum.
          if (p.signal !== undefined && !ALL_SIGNALS.has(p.signal)) return;
          ctx.addIssue({
            code: 'custom',
            path: ['points', i, p.signal ? 'signal' : 'name'],
            message: `${eq.model} has no signal "${signal}"; it has ${Object.keys(signals).join(', ')}`,
          });
        } else if (p.unit !== undefined && p.unit !== info.unit) {
          ctx.addIssue({
            code: 'custom',
            path: ['points', i, 'unit'],
            message: `the simulated ${signal} is in ${info.unit ?? 'no unit'}, not "${p.unit}"`,
          });
        }
      });
    },
    { when: () => true },
  );

export type SimConnection = z.output<typeof simConnectionSchema>;
export type SimEquipment = z.output<typeof simEquipmentSchema>;
