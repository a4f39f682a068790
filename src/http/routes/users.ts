/** `POST /users/{user_id}/terminate_connections`: closes that user's signed-in connections on every node. */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../api-deps.js';
import type { AppRequest } from '../request-app.js';

export function registerUserRoutes(scope: FastifyInstance, deps: ApiDeps): void {
  scope.post<AppRequest & { Params: { userId: string } }>('/users/:userId/terminate_connections', async (request) => {
    // Answered once the engine took it: 503 when it could not (the error handler), so the backend knows to retry.
    await deps.adapter.terminateUser(request.beaconApp.id, request.params.userId);
    return {};
  });
}
